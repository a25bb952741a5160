# Sourced by scripts/test.sh, scripts/devnet.sh and .ci/run: checks what
# the build (and, for `prereqs test`, the tests) need before anything long
# starts, installs what is missing with apt when running as root on
# Debian/Ubuntu, and otherwise stops with the one command to run. Also
# sets the one target directory every script shares, so RocksDB's C++
# (~20 minutes on 2 cores) is compiled once.
#
#   source scripts/prereqs.sh; prereqs build   # cargo, libclang
#   source scripts/prereqs.sh; prereqs test    # + python3 (cryptography), iproute2,
#                                              # node + npm and the packages of tests/eth,
#                                              # tests/explorer and explorer, chromium,
#                                              # python3-venv and tests/py/.venv

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/palisade-target}"

prereqs() {
    local what="${1:-build}" pkgs=() have_clang=0
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: cargo not found. Install Rust (1.94.1 or newer) with rustup:" >&2
        echo "  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh" >&2
        return 1
    fi
    # RocksDB's bindings are generated with libclang.
    if [ -n "${LIBCLANG_PATH:-}" ] || ldconfig -p 2>/dev/null | grep -q 'libclang[-.0-9]*\.so'; then
        have_clang=1
    fi
    [ "$have_clang" = 1 ] || pkgs+=(libclang-dev)
    command -v cc >/dev/null 2>&1 && command -v c++ >/dev/null 2>&1 || pkgs+=(build-essential)
    if [ "$what" = test ]; then
        command -v python3 >/dev/null 2>&1 || pkgs+=(python3)
        # The spec-completeness test signs with a standard ed25519 library:
        # pip where this python3 takes packages (a venv, pyenv), else
        # Debian's package for the system python3.
        if command -v python3 >/dev/null 2>&1 && ! python3 -c 'import cryptography' >/dev/null 2>&1; then
            python3 -m pip install -q cryptography >/dev/null 2>&1 || pkgs+=(python3-cryptography)
        fi
        # The fault scenarios build network namespaces.
        command -v ip >/dev/null 2>&1 || pkgs+=(iproute2)
        # The Ethereum client tests run ethers under Node.js.
        command -v node >/dev/null 2>&1 || pkgs+=(nodejs)
        command -v npm >/dev/null 2>&1 || pkgs+=(npm)
        # The explorer's browser test drives Debian's Chromium (headless).
        command -v chromium >/dev/null 2>&1 || pkgs+=(chromium)
        # The web3.py test runs in a virtual environment of its own; Debian
        # ships the system python3's ensurepip, which venv needs, apart.
        if ! command -v python3 >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
            pkgs+=(python3-venv)
        fi
    fi
    if [ "${#pkgs[@]}" -ne 0 ]; then
        prereqs_install "${pkgs[@]}" || return 1
    fi
    [ "$what" = test ] || return 0
    # The client libraries, exactly as locked, installed once; nothing
    # downloads while the tests run.
    local root py_dir npm_dir
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    # tests/eth: the Ethereum client libraries; tests/explorer:
    # playwright-core (it drives the system's Chromium, never downloads one);
    # explorer: the explorer's build toolchain.
    # Vite 7 (the explorer's build) needs Node.js 20.19 or newer; Debian
    # 12's own nodejs package is 18.
    if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 19) ? 0 : 1)'; then
        echo "error: Node.js $(node -v) is too old: the explorer's build needs 20.19 or newer (install Node.js 20 or 22, e.g. from NodeSource)" >&2
        return 1
    fi
    for npm_dir in tests/eth tests/explorer explorer; do
        prereqs_npm_ci "$root" "$npm_dir" || return 1
    done
    # The same for the Python clients (web3.py, eth-account): a virtual
    # environment in tests/py/.venv (the system python3 may refuse pip,
    # PEP 668), every package pinned and checked against the hashes in
    # tests/py/requirements.txt; remade when that file changes.
    py_dir="$root/tests/py"
    if ! [ -x "$py_dir/.venv/bin/python" ] ||
        ! cmp -s "$py_dir/requirements.txt" "$py_dir/.venv/.installed-requirements.txt" 2>/dev/null; then
        echo "== pip install (tests/py/.venv)" >&2
        (python3 -m venv --clear "$py_dir/.venv" >&2 &&
            "$py_dir/.venv/bin/python" -m pip install -q --disable-pip-version-check \
                --require-hashes -r "$py_dir/requirements.txt" >&2 &&
            cp "$py_dir/requirements.txt" "$py_dir/.venv/.installed-requirements.txt") || {
            echo "error: installing $py_dir/requirements.txt into $py_dir/.venv failed (the web3.py test needs it)" >&2
            return 1
        }
    fi
}

# `npm ci` in $1/$2 unless its node_modules already holds exactly its
# lockfile.
prereqs_npm_ci() {
    local dir="$1/$2"
    if cmp -s "$dir/package-lock.json" "$dir/node_modules/.installed-lock.json" 2>/dev/null; then
        return 0
    fi
    echo "== npm ci ($2)" >&2
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >&2 &&
        cp package-lock.json node_modules/.installed-lock.json) || {
        echo "error: npm ci in $dir failed (the tests need its packages)" >&2
        return 1
    }
}

prereqs_install() {
    local pkgs=("$@")
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "== installing ${pkgs[*]} (apt)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >&2 || return 1
        return 0
    fi
    echo "error: missing ${pkgs[*]}. Install with:" >&2
    echo "  sudo apt-get install -y ${pkgs[*]}" >&2
    return 1
}
