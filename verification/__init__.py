"""Clients for the outside services that vouch for people and accounts: the real-name and face
verification service, and the bank-account check. Flask-free, like `wechat/` and `seals/`;
`verification.emulator` stands in for both in development and tests."""
