#!/bin/sh
# A program that is not Python: a shell script that hands its arguments to the trainer.
# Called as: run.sh <python interpreter> <args...>
interpreter="$1"; shift
exec "$interpreter" "$(dirname "$0")/train.py" "$@"
