#!/usr/bin/env bash
# Faults during training, on a cluster of its own: the training backend killed with SIGKILL (the server restarts
# every backend), the server stopped with -m immediate, and a cancel. After each, the active model is unchanged and
# its CRC verifies, the interrupted version waits in status training, and recsys.train resumes it.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
source "$ROOT/test/tap.sh"
source "$ROOT/scripts/lib.sh"
set +e   # lib.sh stops on the first error; a test suite counts failures instead
if [ "$(id -u)" -ne 0 ]; then
    echo "# not root: this suite starts its own cluster as user postgres; skipped"
    ok 0 "skipped (not root)"
    tap_done
    exit 0
fi
log() { :; }
OUTER_PORT=${PGPORT:-5432}
start_cluster 54344 >/dev/null 2>&1
trap 'stop_cluster; export PGPORT=$OUTER_PORT' EXIT
DB=recsys_faults
q() { psql -X -At -d "$DB" -c "$1" 2>/dev/null; }
wait_ready() { for _ in $(seq 1 60); do pg_isready -q -h /tmp -p 54344 && q "SELECT 1" >/dev/null && return 0; sleep 0.5; done; return 1; }
# waits until the version in training has committed epoch $1
wait_epoch() {
    for _ in $(seq 1 300); do
        n=$(q "SELECT count(*) FROM recsys.training_runs r JOIN recsys.model_versions v USING (version_id)
                WHERE v.status = 'training' AND r.epoch >= $1")
        [ "${n:-0}" -ge 1 ] && return 0
        sleep 0.1
    done
    return 1
}
train_bg() { psql -X -q -d "$DB" -c "CALL recsys.train('default', '{\"max_epochs\": 400, \"patience\": 400, \"gru_epochs\": 0}')" >/dev/null 2>&1 & }
active_ok() {  # the active version is $1 with md5 $2 and a verifying CRC
    is "$(q "SELECT version_id || ':' || md5(weights) || ':' || recsys.model_check(weights) FROM recsys.model_versions WHERE status = 'active'")" \
       "$1:$2:true" "$3"
}

setup_shop "$DB" 800 '{"max_epochs": 2, "gru_epochs": 0}'
ok $? "own cluster on port 54344 with a trained, active version 1"
MD5=$(q "SELECT md5(weights) FROM recsys.model_versions WHERE version_id = 1")

# 1. SIGKILL of the training backend mid-epoch: the postmaster resets every backend
train_bg
wait_epoch 3; ok $? "a second training is under way (epoch 3 committed)"
PID=$(q "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'CALL recsys.train%'")
kill -9 "$PID"
wait
wait_ready; ok $? "the server recovered from the killed backend"
active_ok 1 "$MD5" "after kill -9: version 1 still active, same bytes, CRC verifies"
is "$(q "SELECT status FROM recsys.model_versions WHERE version_id = 2")" "training" "the interrupted version waits in status training"
out=$(PGOPTIONS="-c client_min_messages=notice" psql -X -d "$DB" -c "CALL recsys.train('default', '{\"max_epochs\": 6, \"gru_epochs\": 0}')" 2>&1)
# from its last checkpoint; a crash may also have taken the last commits (synchronous_commit is off here), the
# checkpoints or even the samples: then the same version restarts
[[ "$out" == *"resuming version 2 of default"* || "$out" == *"restarting version 2 of default"* ]]
ok $? "recsys.train resumes version 2 from its last checkpoint"

# 2. the server stopped with -m immediate mid-training, then started again
MD5=$(q "SELECT md5(weights) FROM recsys.model_versions WHERE status = 'active'")
ACTIVE=$(q "SELECT version_id FROM recsys.model_versions WHERE status = 'active'")
train_bg
wait_epoch 3; ok $? "a third training is under way"
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -m immediate -w stop >/dev/null 2>&1
wait
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w -t 60 start >/dev/null 2>&1
wait_ready; ok $? "the server restarted after an immediate stop"
active_ok "$ACTIVE" "$MD5" "after -m immediate: the active version is unchanged and its CRC verifies"
V=$(q "SELECT max(version_id) FROM recsys.model_versions WHERE status = 'training'")
out=$(PGOPTIONS="-c client_min_messages=notice" psql -X -d "$DB" -c "CALL recsys.train('default', '{\"max_epochs\": 6, \"gru_epochs\": 0}')" 2>&1)
# from its last checkpoint, or from the start when the stop took its samples with the last commits
# (synchronous_commit is off here: an immediate stop may lose up to three WAL writer rounds)
[[ "$out" == *"resuming version $V of default"* || "$out" == *"restarting version $V of default"* ]]
ok $? "recsys.train resumes version $V after the restart"
[[ "$out" == *"version $V of default"* ]] || echo "$out" | head -5 | sed 's/^/#   /'

# 3. pg_cancel_backend stops a training within a second
train_bg
wait_epoch 2; ok $? "a fourth training is under way"
PID=$(q "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'CALL recsys.train%'")
MS=$(cancel_ms "$DB" "$PID")
wait
[ "$MS" -lt 1000 ]; ok $? "pg_cancel_backend stopped the training in ${MS} ms"
tap_done
