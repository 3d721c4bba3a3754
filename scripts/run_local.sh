#!/usr/bin/env bash
# `make run`: the WeChat emulator and the identity-verification emulator beside the app (as
# api.weixin.qq.com and the real-name service would be), then the app on SQLite with in-process
# jobs and demo data. Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin
export APP_ENV=${APP_ENV:-development}
export WECHAT_API_BASE=${WECHAT_API_BASE:-http://127.0.0.1:8765}
export IDENTITY_SERVICE_BASE=${IDENTITY_SERVICE_BASE:-http://127.0.0.1:8766}
# The same emulator stands in for the city's 红棉码 service (POST /dev/citycode there).
export CITY_CODE_SERVICE_BASE=${CITY_CODE_SERVICE_BASE:-$IDENTITY_SERVICE_BASE}
emulator_port=${WECHAT_API_BASE##*:}
identity_port=${IDENTITY_SERVICE_BASE##*:}
appid=$($BIN/python -c 'from config import load_config; print(load_config().WECHAT_APPID)')
secret=$($BIN/python -c 'from config import load_config; print(load_config().WECHAT_SECRET)')

mkdir -p var
identity_app=$($BIN/python -c 'from config import load_config; c = load_config(); print(f"{c.IDENTITY_SERVICE_APP_ID}:{c.IDENTITY_SERVICE_SECRET}")')
$BIN/python -m wechat.emulator --port "$emulator_port" --app "$appid:$secret" &
emulator_pid=$!
$BIN/python -m verification.emulator --port "$identity_port" --app "$identity_app" &
identity_pid=$!
trap 'kill $emulator_pid $identity_pid 2>/dev/null || true' EXIT INT TERM
for port in "$emulator_port" "$identity_port"; do
  for _ in $(seq 50); do
    $BIN/python -c "import socket,sys; socket.create_connection(('127.0.0.1', $port), 0.2)" 2>/dev/null && break
    sleep 0.1
  done
done

$BIN/flask --app wsgi db upgrade
$BIN/flask --app wsgi organisation load
# Each matter names its department: after the organisation.
$BIN/flask --app wsgi matters load
$BIN/flask --app wsgi demo seed
$BIN/flask --app wsgi run --host 127.0.0.1 --port "${PORT:-5000}" --no-reload
