#!/bin/sh
# Entry point of the Longview images.
#
#   (no arguments), serve [flags], --flag ...   fetch the default model if needed, then serve
#   models pull, embed ..., classify ...        any other longview subcommand
#   sh, python3, ...                            any program on PATH
#
# The default model is fetched only when no LONGVIEW_MODEL_DIR is set. `longview models
# pull` is the one authority on "present" (manifest, version, checksum, size) and does
# nothing when the model is already under LONGVIEW_MODELS_ROOT, so a read-only mount of a
# populated models volume works as well as an empty writable one.
set -eu

if [ "$#" -eq 0 ]; then
    set -- serve
fi

case "$1" in
    -h | --help | -V | --version)
        exec longview "$@"
        ;;
    serve | -*)
        if [ "$1" = serve ]; then
            shift
        fi
        pull=yes
        for arg in "$@"; do
            case "$arg" in
                -h | --help | --model-dir | --model-dir=*) pull=no ;;
            esac
        done
        if [ -z "${LONGVIEW_MODEL_DIR:-}" ] && [ "$pull" = yes ]; then
            longview models pull
        fi
        exec longview serve "$@"
        ;;
    longview)
        shift
        exec longview "$@"
        ;;
esac

# A program on PATH (not a shell builtin such as `eval`, which is also a subcommand).
case "$(command -v "$1" || true)" in
    /*) exec "$@" ;;
esac
exec longview "$@"
