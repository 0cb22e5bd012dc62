# Seeds 6 and 7 of the 8-epoch `ours` (outputs/e8_s22's teacher), trained with the
# code before session 24 (worktree /work/wt24 at 69bfe75) and with this code, two at
# a time; results in outputs/s24/ab_train/ (see one.sh), gathered by hand into
# docs/results/train_check_s24.json.
HERE="$(cd "$(dirname "$0")" && pwd)"
OUT=/work/main/outputs/s24/ab_train
mkdir -p $OUT
for s in 6 7; do
  bash "$HERE/one.sh" /work/wt24 $s old$s > $OUT/old$s.out 2>&1 &
  bash "$HERE/one.sh" /work/main $s new$s > $OUT/new$s.out 2>&1 &
  wait
  cat $OUT/old$s.out $OUT/new$s.out
done
