#!/usr/bin/env bash
# Debian tools some tests use to check what the project renders: signed PDFs (pdfsig,
# pdftoppm), QR codes (zbarimg), pdfsig's trust store (certutil), a test HSM (softhsm2), the
# balancer and private Redis of `make test-prod` (haproxy, redis-server), and the console's
# browser tests (Debian's chromium, driven by Playwright from PyPI; CJK fonts for its
# screenshots). Installed with apt when missing and we are root; the tests that need a
# missing tool skip with a reason.
set -uo pipefail

# "what to look for:package" -- a command on PATH, or a file.
wanted=(
  pdfsig:poppler-utils
  zbarimg:zbar-tools
  certutil:libnss3-tools
  softhsm2-util:softhsm2
  /usr/bin/chromium:chromium
  /usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc:fonts-noto-cjk
  /usr/sbin/haproxy:haproxy
  redis-server:redis-server
)
missing=()
for pair in "${wanted[@]}"; do
  probe=${pair%%:*}
  if [[ $probe == /* ]]; then
    [ -e "$probe" ] || missing+=("${pair##*:}")
  else
    command -v "$probe" >/dev/null 2>&1 || missing+=("${pair##*:}")
  fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} (apt)"
  apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; } \
    || echo "could not install ${missing[*]}; the tests that need them will skip"
else
  echo "missing ${missing[*]} (apt-get install them as root); the tests that need them will skip"
fi
exit 0
