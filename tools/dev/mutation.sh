#!/usr/bin/env bash
# Mutation testing of the three distillation losses with mutmut 3.x.
#
# mutmut copies mmtrack_kd/ and tests/ into mutants/, plants each mutant
# there (the files in the work tree are never touched) and runs the tests of
# the losses against it: a mutant that no test fails "survived". The
# configuration (files mutated, tests run) is the [mutmut] section of
# setup.cfg; docs/testing.md lists the surviving mutants and why each is
# harmless.
#
# Usage: tools/dev/mutation.sh [MUTANT_NAME ...]   (from the repository root)
# Env:   VENV (default .venv), JOBS (parallel mutants, default 1),
#        MIN_SCORE (percentage of killed mutants below which the script
#        fails, default 85), KEEP=1 to reuse the results of a previous run.
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${VENV:-.venv}
JOBS=${JOBS:-1}
MIN_SCORE=${MIN_SCORE:-85}
MUTMUT="$VENV/bin/mutmut"
if [ ! -x "$MUTMUT" ]; then
    echo "mutmut is not installed: $VENV/bin/pip install 'mutmut==3.8.1'" >&2
    exit 2
fi
if [ "${KEEP:-0}" != 1 ] && [ $# -eq 0 ]; then
    rm -rf mutants  # a fresh copy of the current sources and tests
fi
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
start=$(date +%s)
"$MUTMUT" run --max-children "$JOBS" "$@" > mutants.log 2>&1 || {
    tail -c 3000 mutants.log >&2
    exit 1
}
end=$(date +%s)
mv mutants.log mutants/run.log
"$MUTMUT" export-cicd-stats > /dev/null
"$VENV/bin/python" - "$((end - start))" "$MIN_SCORE" <<'PY'
import json
import subprocess
import sys

stats = json.load(open('mutants/mutmut-cicd-stats.json'))
seconds, min_score = int(sys.argv[1]), float(sys.argv[2])
killed = stats['killed'] + stats.get('caught_by_type_check', 0)
total = stats['total']
score = 100.0 * killed / max(total, 1)
survivors = subprocess.run(
    [sys.executable, '-m', 'mutmut', 'results'], capture_output=True,
    text=True).stdout
print(survivors.rstrip())
print(f'mutants: {total}, killed: {killed}, survived: {stats["survived"]}, '
      f'timeouts: {stats["timeout"]}, suspicious: {stats["suspicious"]}, '
      f'no tests: {stats["no_tests"]}')
print(f'kill rate: {score:.1f} % (minimum {min_score:g} %), '
      f'run time: {seconds} s')
print('inspect one: mutmut show NAME; browse: mutmut browse')
sys.exit(0 if score >= min_score else 1)
PY
