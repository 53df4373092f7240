#!/usr/bin/env bash
# A local Request Tracker 5 for frontdesk's integration tests (Debian 12 packages, SQLite).
#
# Usage: scripts/rt-test-server.sh [start|stop|status]     (start is the default)
#
#   start   installs request-tracker5 + rt5-db-sqlite if missing, writes the site config,
#           starts rt-server on 127.0.0.1:$RT_PORT, waits until REST2 answers, loads queue
#           Support, frontdesk's custom fields and account once, and prints the base URL (the
#           only line on stdout; progress goes to stderr). Idempotent: a server of ours already
#           answering is reused, one on another port is restarted on this one.
#   stop    stops the server started by this script (by its pid file).
#   status  says whether it runs and answers; exit 0 if so, 3 if stopped, 1 if it does not answer.
#
# Env: RT_PORT (18080), RT_START_TIMEOUT (60 s), RT_WORKERS (4 preforked workers).
# State: /tmp/frontdesk-rt/{rt-server.pid,rt-server.log,install.log,port,frontdesk.token}.
# Logins: root / password (superuser, plays the specialist); frontdesk / frontdesk-test (the
# account frontdesk files as, rights on queue Support only; its auth token is frontdesk.token);
# ivan and maria / specialist-test (specialists frontdesk acts for: group Specialists, which may
# own tickets of queue Support).
#
# Measured on a 2-core Debian 12 machine: from nothing (no apt lists, no package) ~60 s in all:
# apt-get update + install ~48 s, REST2 answering ~4 s after launch, seeding ~5 s, token ~1 s.
# Installed but stopped: ~5 s. Already running: ~2 s (the seeding checks). stop: ~2 s.
set -euo pipefail

RT_PORT="${RT_PORT:-18080}"
RT_START_TIMEOUT="${RT_START_TIMEOUT:-60}"
RT_WORKERS="${RT_WORKERS:-4}"
RT_USER=root
RT_PASSWORD=password
FRONTDESK_USER=frontdesk
FRONTDESK_PASSWORD=frontdesk-test
SPECIALISTS=(ivan maria)
SPECIALIST_PASSWORD=specialist-test

STATE_DIR=/tmp/frontdesk-rt
PID_FILE="$STATE_DIR/rt-server.pid"
LOG_FILE="$STATE_DIR/rt-server.log"
PORT_FILE="$STATE_DIR/port"
TOKEN_FILE="$STATE_DIR/frontdesk.token"
INSTALL_LOG="$STATE_DIR/install.log"

BASE_URL="http://127.0.0.1:${RT_PORT}"
REST="$BASE_URL/REST/2.0"
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
INITIALDATA="$SCRIPT_DIR/rt-initialdata.pl"
SITE_CONFIG=/etc/request-tracker5/RT_SiteConfig.d/90-frontdesk-test.pm
BCRYPT_CONFIG=/etc/request-tracker5/RT_SiteConfig.d/91-frontdesk-test-bcrypt.pm
RT_SERVER=/usr/share/request-tracker5/libexec/rt-server
RT_SETUP_DATABASE=/usr/sbin/rt-setup-database-5
PACKAGES=(request-tracker5 rt5-db-sqlite)
CUSTOM_FIELDS=(FrontdeskRef RequestType Category Store Plan TelegramUser PaidAgreement)

STARTED_AT=$SECONDS

say() { echo "rt-test-server: $*" >&2; }
die() { say "error: $*"; exit 1; }
elapsed() { echo "$((SECONDS - STARTED_AT)) s"; }

case "$RT_PORT" in
    '' | *[!0-9]*) die "RT_PORT must be a port number, got '$RT_PORT'" ;;
esac

# --- installation -----------------------------------------------------------------------------

installed() {
    local package status
    for package in "$@"; do
        status="$(dpkg-query -W -f='${Status}' "$package" 2>/dev/null || true)"
        [[ "$status" == "install ok installed" ]] || return 1
    done
}

install_failed() {
    tail -n 20 "$INSTALL_LOG" >&2 || true
    die "$1 failed (log: $INSTALL_LOG)"
}

install_packages() {
    local wanted=("${PACKAGES[@]}")
    command -v curl >/dev/null || wanted+=(curl)
    if installed "${PACKAGES[@]}" && command -v curl >/dev/null; then
        return
    fi
    [[ $EUID -eq 0 ]] || die "Request Tracker is not installed and installing it needs root"
    command -v apt-get >/dev/null || die "Request Tracker is not installed and apt-get is missing"
    local began=$SECONDS
    mkdir -p "$STATE_DIR"
    : >"$INSTALL_LOG"
    # An image ships without package lists: update only when apt knows no candidate.
    if apt-cache policy "${wanted[@]}" 2>/dev/null | grep -q 'Candidate: (none)' \
        || [[ -z "$(apt-cache policy "${PACKAGES[0]}" 2>/dev/null)" ]]; then
        say "apt-get update"
        apt-get update >>"$INSTALL_LOG" 2>&1 || install_failed "apt-get update"
    fi
    say "installing ${wanted[*]} (log: $INSTALL_LOG)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${wanted[@]}" \
        >>"$INSTALL_LOG" 2>&1 || install_failed "apt-get install"
    say "installed in $((SECONDS - began)) s"
}

# --- configuration ----------------------------------------------------------------------------

write_site_config() {
    local wanted
    wanted="$(cat <<EOF
# Written by frontdesk's scripts/rt-test-server.sh: a throw-away RT for integration tests.
Set(\$WebPath, "");
Set(\$WebDomain, "127.0.0.1");
Set(\$WebPort, ${RT_PORT});
Set(\$WebBaseURL, "http://127.0.0.1:${RT_PORT}");
# Never hand mail to the MTA the package pulled in: requestors are made-up addresses.
Set(\$MailCommand, "mbox");
Set(\$LogToSTDERR, "warning");
EOF
)"
    write_config_file "$SITE_CONFIG" "$wanted"
    # RT hashes passwords and auth tokens with bcrypt at cost 12 and checks one on every REST2
    # call: ~0.2 s of CPU per call, most of the time of the rt tests. A throw-away RT needs 4.
    write_config_file "$BCRYPT_CONFIG" "$(printf '%s\n%s' \
        "# Written by frontdesk's scripts/rt-test-server.sh: cheap logins for a test RT." \
        'Set($BcryptCost, 4);')"
}

write_config_file() {
    local path="$1" wanted="$2"
    if [[ -f "$path" ]] && [[ "$(cat "$path")" == "$wanted" ]]; then
        return
    fi
    [[ $EUID -eq 0 ]] || die "writing $path needs root"
    printf '%s\n' "$wanted" >"$path.tmp.$$"
    chmod 0644 "$path.tmp.$$"
    mv "$path.tmp.$$" "$path"
    say "wrote $path"
}

# --- process ----------------------------------------------------------------------------------

server_pid() {
    # The pid of our rt-server if it is alive; guards against a stale file and a reused pid.
    [[ -f "$PID_FILE" ]] || return 1
    local pid
    pid="$(cat "$PID_FILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q rt-server || return 1
    echo "$pid"
}

rest_answers() {
    curl -fsS -o /dev/null --max-time 5 -u "$RT_USER:$RT_PASSWORD" "$REST/queues/all" 2>/dev/null
}

wait_until_answering() {
    local pid=$1 deadline=$((SECONDS + RT_START_TIMEOUT))
    until rest_answers; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$LOG_FILE" >&2 || true
            die "rt-server exited before answering (log: $LOG_FILE)"
        fi
        if ((SECONDS >= deadline)); then
            tail -n 30 "$LOG_FILE" >&2 || true
            die "REST2 did not answer at $REST within ${RT_START_TIMEOUT} s (log: $LOG_FILE)"
        fi
        sleep 1
    done
}

launch() {
    mkdir -p "$STATE_DIR"
    [[ -x "$RT_SERVER" ]] || die "$RT_SERVER is missing"
    local began=$SECONDS
    # setsid: its own session, so it outlives the caller (a test session) and a stop can reach
    # its whole process group. The inner shell writes its own pid, then becomes rt-server.
    # --host (a plackup option Starlet honours) keeps it on loopback only.
    : >"$LOG_FILE"
    rm -f "$PID_FILE"
    # 9>&-: the server must not inherit the start lock (fd 9), or it would hold it for as long
    # as it runs and every later start would wait on it forever.
    # shellcheck disable=SC2016 # $$ and $1 belong to the inner shell
    setsid bash -c 'echo $$ >"$1"; shift; cd /; exec "$@"' _ "$PID_FILE" \
        "$RT_SERVER" --host 127.0.0.1 --port "$RT_PORT" --max-workers "$RT_WORKERS" \
        </dev/null >>"$LOG_FILE" 2>&1 9>&- &
    local waited=0
    until [[ -s "$PID_FILE" ]] || ((waited >= 50)); do
        sleep 0.1
        waited=$((waited + 1))
    done
    local pid
    pid="$(cat "$PID_FILE" 2>/dev/null)" || die "rt-server did not start (log: $LOG_FILE)"
    echo "$RT_PORT" >"$PORT_FILE"
    say "started rt-server (pid $pid) on 127.0.0.1:$RT_PORT, waiting for REST2"
    wait_until_answering "$pid"
    say "REST2 answered after $((SECONDS - began)) s"
}

stop_server() {
    local pid
    if ! pid="$(server_pid)"; then
        rm -f "$PID_FILE" "$PORT_FILE"
        say "not running"
        return 0
    fi
    # TERM to the parent: the prefork master passes it on to its workers and waits for them.
    kill -TERM "$pid" 2>/dev/null || true
    local waited=0
    while kill -0 "$pid" 2>/dev/null && ((waited < 150)); do
        sleep 0.1
        waited=$((waited + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        say "rt-server (pid $pid) ignored TERM, killing its process group"
        kill -KILL -- "-$pid" 2>/dev/null || true
    fi
    rm -f "$PID_FILE" "$PORT_FILE"
    say "stopped rt-server (pid $pid)"
}

# --- data -------------------------------------------------------------------------------------

custom_fields_applied() {
    # The queue lists the ticket custom fields that apply to it, global ones included.
    local queue name
    queue="$(curl -fsS --max-time 10 -u "$RT_USER:$RT_PASSWORD" \
        "$REST/queue/Support" 2>/dev/null)" || return 1
    for name in "${CUSTOM_FIELDS[@]}"; do
        grep -Eq "\"name\"[[:space:]]*:[[:space:]]*\"$name\"" <<<"$queue" || return 1
    done
}

seed_stamp() {
    # Rights are not visible through REST2: a stamp of the datafile loaded tells whether this
    # version of it (new rights included) was loaded into this server's database.
    echo "$STATE_DIR/seeded.$(sha1sum "$INITIALDATA" | cut -c1-16)"
}

seeded() {
    custom_fields_applied || return 1
    [[ -f "$(seed_stamp)" ]] || return 1
    # The staff group and its outside member (RT_STAFF_GROUP tests).
    curl -fsS -o /dev/null --max-time 10 -u "$RT_USER:$RT_PASSWORD" \
        "$REST/user/contractor@example.com" 2>/dev/null || return 1
    # The specialists frontdesk acts for (staff actions tests), who may own tickets.
    local specialist
    for specialist in "${SPECIALISTS[@]}"; do
        curl -fsS -o /dev/null --max-time 10 -u "$specialist:$SPECIALIST_PASSWORD" \
            "$REST/queue/Support" 2>/dev/null || return 1
    done
    # frontdesk's account logs in and sees the queue.
    curl -fsS -o /dev/null --max-time 10 -u "$FRONTDESK_USER:$FRONTDESK_PASSWORD" \
        "$REST/queue/Support" 2>/dev/null
}

seed() {
    if seeded; then
        return
    fi
    [[ $EUID -eq 0 ]] || die "loading $INITIALDATA needs root"
    local began=$SECONDS
    say "loading $INITIALDATA"
    # The datafile declares only what is missing, so a half-seeded database is completed, never
    # duplicated. The running server sees the new queue and fields without a restart.
    "$RT_SETUP_DATABASE" --action insert --datafile "$INITIALDATA" --skip-create >&2
    touch "$(seed_stamp)"
    seeded || die "queue Support or frontdesk's custom fields still missing after seeding"
    say "seeded in $((SECONDS - began)) s"
}

mint_token() {
    # An auth token of the frontdesk account, for token-auth clients. RT keeps only its hash,
    # so a new one is made whenever the file is gone or RT no longer takes it (a new database).
    if [[ -s "$TOKEN_FILE" ]] && curl -fsS -o /dev/null --max-time 10 \
        -H "Authorization: token $(cat "$TOKEN_FILE")" "$REST/queue/Support" 2>/dev/null; then
        return
    fi
    [[ $EUID -eq 0 ]] || die "minting an auth token needs root"
    local token
    token="$(perl -I/usr/share/request-tracker5/lib -MRT -e '
        RT::LoadConfig(); RT::Init();
        my $user = RT::User->new(RT->SystemUser);
        $user->Load($ARGV[0]) or die "no user $ARGV[0]\n";
        my ($id, $msg, $token) = RT::AuthToken->new(RT->SystemUser)->Create(
            Owner => $user->id, Description => "frontdesk integration tests");
        $id or die "$msg\n";
        print $token;
    ' "$FRONTDESK_USER" 2>>"$LOG_FILE")" || die "could not mint an auth token (log: $LOG_FILE)"
    (umask 077 && printf '%s\n' "$token" >"$TOKEN_FILE")
    say "minted an auth token for $FRONTDESK_USER into $TOKEN_FILE"
}

cheap_logins() {
    # Logins hashed at a higher cost than the config's (a database from before $BcryptCost was
    # set) are hashed again; a token is minted again. Only for a server this script has just
    # started: an older server still running would raise them back to its own cost.
    local stale
    stale="$(perl -I/usr/share/request-tracker5/lib -MRT -e '
        RT::LoadConfig(); RT::Init();
        my $cost = RT->Config->Get("BcryptCost");
        my %password = @ARGV;
        for my $name (sort keys %password) {
            my $user = RT::User->new(RT->SystemUser);
            $user->Load($name) or die "no user $name\n";
            my ($rounds) = ($user->__Value("Password") // "") =~ /^!bcrypt!(\d+)!/;
            next unless $rounds && $rounds > $cost;
            my ($ok, $msg) = $user->SetPassword($password{$name});
            $ok or die "$name: $msg\n";
        }
        my $owner = RT::User->new(RT->SystemUser);
        $owner->Load("frontdesk");
        my $tokens = RT::AuthTokens->new(RT->SystemUser);
        $tokens->LimitOwner(VALUE => $owner->id);
        while (my $token = $tokens->Next) {
            my ($rounds) = ($token->__Value("Token") // "") =~ /^!bcrypt!(\d+)!/;
            print "token\n" if $rounds && $rounds > $cost;
        }
    ' "$RT_USER" "$RT_PASSWORD" "$FRONTDESK_USER" "$FRONTDESK_PASSWORD" \
        "${SPECIALISTS[0]}" "$SPECIALIST_PASSWORD" "${SPECIALISTS[1]}" "$SPECIALIST_PASSWORD" \
        2>>"$LOG_FILE")" \
        || die "could not hash the logins again (log: $LOG_FILE)"
    if [[ -n "$stale" ]]; then
        rm -f "$TOKEN_FILE"
    fi
}

# --- commands ---------------------------------------------------------------------------------

start() {
    # One start at a time (parallel test workers each start it): the later one finds it running.
    mkdir -p "$STATE_DIR"
    exec 9>"$STATE_DIR/start.lock"
    flock 9
    install_packages
    write_site_config
    local pid running_port launched=0
    if pid="$(server_pid)"; then
        running_port="$(cat "$PORT_FILE" 2>/dev/null || true)"
        if [[ "$running_port" != "$RT_PORT" ]]; then
            say "rt-server runs on port '${running_port}', restarting on $RT_PORT"
            stop_server
            launch
            launched=1
        else
            wait_until_answering "$pid"
        fi
    else
        # A server we did not start (or lost the pid file of) must not be mistaken for ours.
        if curl -s -o /dev/null --max-time 2 "$BASE_URL/" 2>/dev/null; then
            die "port $RT_PORT is taken by a process this script did not start"
        fi
        launch
        launched=1
    fi
    seed
    if ((launched)); then
        cheap_logins
    fi
    mint_token
    say "ready in $(elapsed): $BASE_URL (login $RT_USER / $RT_PASSWORD)"
    echo "$BASE_URL"
}

status() {
    local pid
    if ! pid="$(server_pid)"; then
        echo "stopped"
        return 3
    fi
    local port
    port="$(cat "$PORT_FILE" 2>/dev/null || echo "$RT_PORT")"
    REST="http://127.0.0.1:$port/REST/2.0"
    if rest_answers; then
        echo "running: pid $pid, http://127.0.0.1:$port"
        return 0
    fi
    echo "not answering: pid $pid, http://127.0.0.1:$port (log: $LOG_FILE)"
    return 1
}

case "${1:-start}" in
    start) start ;;
    stop) stop_server ;;
    status) status ;;
    -h | --help | help) sed -n '2,21p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' ;;
    *) die "unknown command '$1' (start, stop or status)" ;;
esac
