#!/usr/bin/env bash
# The GUI under a real X server, driven by the keyboard and mouse as a user would:
# designer -> run a simulated session (F5) -> abort it (Shift+F5) -> review a finished session
# (Ctrl+Shift+O, play, mark freezing by hand, save). One PNG per step, per screen size.
#
#   docs/screenshots/xvfb-tour.sh 1366x768      # needs: Xvfb, xdotool, imagemagick (import)
#   docs/screenshots/xvfb-tour.sh 1920x1080
#
# Writes docs/screenshots/{designer,console-running,console-aborted,review}-WxH.png.
set -uo pipefail  # a step that fails still leaves the other screenshots
SIZE=${1:-1366x768}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT="$ROOT/docs/screenshots"
RIG_CMD=${RIG_CMD:-rig}
WORK=$(mktemp -d /tmp/rig-tour.XXXXXX)
DISPLAY_NO=${DISPLAY_NO:-$((90 + RANDOM % 100))}
export DISPLAY=":$DISPLAY_NO" XDG_CONFIG_HOME="$WORK/config" XDG_RUNTIME_DIR="$WORK/runtime"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"

Xvfb "$DISPLAY" -screen 0 "${SIZE}x24" -nolisten tcp >/dev/null 2>&1 &
XVFB=$!
GUI=
cleanup() {
  [ -n "$GUI" ] && kill "$GUI" 2>/dev/null || true
  kill "$XVFB" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT
sleep 1

shot() { sleep "${2:-1}"; import -window root "$OUT/$1-$SIZE.png"; echo "$OUT/$1-$SIZE.png"; }
key() { xdotool key --delay 80 "$@"; }
window() { xdotool search --sync --onlyvisible --name "fear-rig" | head -1; }

# a finished session to review: the demo protocol, --fast, on the small simulated rig
cd "$WORK"
FINISHED=$("$RIG_CMD" run "$ROOT/protocols/demo.yaml" --rig "$ROOT/docs/rigs/sim-small.yaml" \
  --fast --out "$WORK/done" --animal m042 | tail -1)

"$RIG_CMD" gui "$ROOT/protocols/demo.yaml" --rig "$ROOT/docs/rigs/sim-small.yaml" &
GUI=$!
W=$(window)
sleep 3
xdotool windowfocus "$W" 2>/dev/null || true  # no window manager: focus it ourselves
shot designer 2

# the console: F5 starts the session (at real time), from any tab
key F5
shot console-running 24
key shift+F5
shot console-aborted 4

# review the finished session: Ctrl+Shift+O, type its folder, Enter
key ctrl+shift+o
sleep 2
xdotool type --delay 20 "$FINISHED"
key Return
sleep 3
# focus the review (click its video), play at 1x from the start, and mark by hand what looks
# like freezing during the first CS (M at its start, M at its end), pause, save (Ctrl+H)
read -r WX WY WW WH < <(xdotool getwindowgeometry --shell "$W" | awk -F= '/^(X|Y|WIDTH|HEIGHT)=/{printf "%s ", $2}')
xdotool mousemove $((WX + WW / 4)) $((WY + WH / 3)) click 1
key space
sleep 10.6
key m
sleep 7.6
key m space
key ctrl+h
shot review 2
