#!/usr/bin/env bash
# Installs the Debian packages the tests start private instances of
# (PostgreSQL, Redis and Redis Cluster, NGINX, Prometheus with promtool, Alertmanager) when one is missing; does nothing when all are
# there. `make test` and .ci/run call it. Needs root (or sudo) and Debian's
# package mirrors only when something is missing.
set -euo pipefail

need=()
ls -d /usr/lib/postgresql/*/bin >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
# redis-cli creates the Redis Cluster of internal/testenv (--cluster create).
command -v redis-cli >/dev/null 2>&1 || need+=(redis-tools)
# Debian puts nginx in /usr/sbin, which a non-root PATH may lack.
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
# promtool ships with prometheus; Debian names the Alertmanager binary
# prometheus-alertmanager, as its package.
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
[ ${#need[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "test-deps: installing ${need[*]} (apt-get)"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${need[@]}"
