#!/bin/sh
# The image's entry point: `fer` with the arguments given (serve by default). Configuration comes from
# FERSHARP_* variables (FERSHARP_URLS, FERSHARP_MODEL, FERSHARP_API_KEY, FERSHARP_CORS_ORIGINS,
# FERSHARP_LOG_FORMAT) or from options after the command. exec, so SIGTERM reaches the server, which then
# finishes its requests in flight (--shutdown-timeout) and exits 0.
set -eu
# A read-only root filesystem leaves /tmp (a tmpfs or emptyDir) as the one writable place.
export TMPDIR="${TMPDIR:-/tmp}" DOTNET_BUNDLE_EXTRACT_BASE_DIR="${TMPDIR:-/tmp}"
exec dotnet "$(dirname "$0")/fer.dll" "${@:-serve}"
