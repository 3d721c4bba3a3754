"""The WeChat app the tests log in to, known to the session emulator."""

TEST_APPID = "wx_test_yuhaoban"
TEST_SECRET = "test-wechat-secret"
