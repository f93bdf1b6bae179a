#!/bin/sh
# Runs its arguments as a child, not with exec, as many wrapper scripts do: a signal sent to
# this shell alone does not reach the program it started.
"$@"
status=$?
echo "no_exec.sh: the program exited with $status"
exit $status
