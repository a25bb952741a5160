// SPDX-License-Identifier: MIT
// Contracts for the differential test against anvil (tests/eth/differential.mjs):
// the same signed transactions run on `palisade dev` and on anvil must
// give the same receipts, return data and state. Nothing here reads what
// legitimately differs between two chains (block number, timestamp, block
// hash, prevrandao, block gas limit) except `env()`, whose differing fields
// the test reports without comparing them.
pragma solidity ^0.8.30;

/// Storage, events, errors, precompiles, value, nested calls and
/// introspection. Storage is addressed by slot number (assembly), so the
/// test reads exactly the slots a step wrote with eth_getStorageAt.
contract Conformance {
    event Stored(uint256 indexed slot, uint256 value);
    event Mixed(
        address indexed who,
        uint256 indexed n,
        bytes32 indexed tag,
        uint256 amount,
        string note,
        bytes blob
    );
    event Anon(uint256 indexed a, bytes32 indexed b, uint256 c) anonymous;
    event Received(address indexed from, uint256 value, bytes data);
    event Called(address indexed target, bool ok, bytes ret, uint256 gasLeft);
    event Precompile(address indexed precompile, bool ok, bytes out);
    event Inspected(address indexed who, uint256 balance, bytes32 codehash, uint256 codesize);
    event Depth(uint256 n, address sender, uint256 value);

    error Custom(uint256 code, address who, string why);

    // ---- storage (slots 0..255 by number; refunds: EIP-2200/3529) ----

    function set(uint256 slot, uint256 value) external {
        assembly {
            sstore(slot, value)
        }
        emit Stored(slot, value);
    }

    function setMany(uint256 first, uint256 n, uint256 value) external {
        for (uint256 i = first; i < first + n; i++) {
            assembly {
                sstore(i, value)
            }
        }
    }

    /// Writes a non-zero value and clears it in the same transaction.
    function setThenClear(uint256 slot, uint256 value) external {
        assembly {
            sstore(slot, value)
            sstore(slot, 0)
        }
    }

    /// Changes a slot twice and puts its original value back.
    function churn(uint256 slot, uint256 a, uint256 b) external {
        assembly {
            let orig := sload(slot)
            sstore(slot, a)
            sstore(slot, b)
            sstore(slot, orig)
        }
    }

    /// Transient storage (EIP-1153) carried into a persistent slot, and
    /// MCOPY (EIP-5656); CLZ (EIP-7939, Osaka) of `x` into slot+1.
    function transientAndNew(uint256 slot, uint256 x) external {
        assembly {
            tstore(7, x)
            tstore(7, add(tload(7), 1))
            mstore(0x40, tload(7))
            mcopy(0x80, 0x40, 0x20)
            sstore(slot, mload(0x80))
            sstore(add(slot, 1), clz(x))
        }
    }

    function get(uint256 slot) external view returns (uint256 v) {
        assembly {
            v := sload(slot)
        }
    }

    // ---- events ----

    function emitAll(uint256 n, bytes32 tag, string calldata note, bytes calldata blob) external payable {
        emit Mixed(msg.sender, n, tag, msg.value, note, blob);
        emit Anon(n, tag, n * 2);
        bytes32 t = tag;
        assembly {
            mstore(0, n)
            log0(0, 32)
            log1(0, 0, t)
            log2(0, 32, t, n)
            log3(0, 0, t, n, caller())
            log4(0, 32, t, n, caller(), callvalue())
        }
    }

    // ---- failures ----

    function fail(uint256 mode) external view returns (uint256) {
        if (mode == 0) require(false, "conformance: require failed");
        if (mode == 1) revert Custom(42, msg.sender, "custom");
        if (mode == 2) revert();
        if (mode == 3) assert(mode == 4);
        if (mode == 4) return 1 / (mode - 4);
        if (mode == 5) {
            assembly {
                invalid()
            }
        }
        if (mode == 6) {
            // Runs until out of gas.
            uint256 i;
            while (gasleft() > 0) {
                assembly {
                    i := add(i, sload(i))
                }
            }
            return i;
        }
        if (mode == 7) {
            // RETURNDATACOPY beyond the return data.
            assembly {
                returndatacopy(0, 0, 1)
            }
        }
        return mode;
    }

    /// Writes, emits, then fails as `mode` says: nothing written or
    /// emitted survives.
    function writeThenFail(uint256 slot, uint256 mode) external {
        assembly {
            sstore(slot, 1)
        }
        emit Stored(slot, 1);
        this.fail(mode);
    }

    // ---- precompiles ----

    function pre(address p, bytes calldata input, uint256 gas) public returns (bool ok, bytes memory out) {
        (ok, out) = p.staticcall{gas: gas}(input);
        emit Precompile(p, ok, out);
    }

    /// Each precompile in turn, results in storage (slot 64 + i: keccak of
    /// output, or 0 on failure) and in events.
    function preMany(address[] calldata ps, bytes[] calldata inputs) external {
        for (uint256 i = 0; i < ps.length; i++) {
            (bool ok, bytes memory out) = pre(ps[i], inputs[i], 1_000_000);
            bytes32 h = ok ? keccak256(out) : bytes32(0);
            assembly {
                sstore(add(64, i), h)
            }
        }
    }

    // ---- value ----

    receive() external payable {
        emit Received(msg.sender, msg.value, "");
    }

    fallback() external payable {
        emit Received(msg.sender, msg.value, msg.data);
    }

    /// Pays `amounts[i]` to `to[i]` with CALL, then `sent` with SEND (2300
    /// gas stipend) to `to[0]`, recording the result in slot 30.
    function pay(address payable[] calldata to, uint256[] calldata amounts, uint256 sent) external payable {
        for (uint256 i = 0; i < to.length; i++) {
            (bool ok, ) = to[i].call{value: amounts[i]}("");
            require(ok, "pay failed");
        }
        if (sent > 0) {
            bool ok = to[0].send(sent);
            assembly {
                sstore(30, add(ok, 1))
            }
        }
    }

    // ---- nested calls ----

    function callTo(address target, uint256 value, uint256 gas, bytes calldata data)
        external
        payable
        returns (bool ok, bytes memory ret)
    {
        (ok, ret) = target.call{value: value, gas: gas}(data);
        emit Called(target, ok, ret, gasleft());
    }

    function delegateTo(address target, bytes calldata data) external payable returns (bool ok, bytes memory ret) {
        (ok, ret) = target.delegatecall(data);
        emit Called(target, ok, ret, gasleft());
    }

    function staticTo(address target, bytes calldata data) external returns (bool ok, bytes memory ret) {
        (ok, ret) = target.staticcall(data);
        emit Called(target, ok, ret, gasleft());
    }

    /// Calls itself `n` deep, each frame writing slot 100 + n and passing
    /// on one wei less.
    function recurse(uint256 n) external payable {
        emit Depth(n, msg.sender, msg.value);
        assembly {
            sstore(add(100, n), add(n, 1))
        }
        if (n > 0) this.recurse{value: msg.value > 0 ? msg.value - 1 : 0}(n - 1);
    }

    // ---- introspection ----

    function inspect(address[] calldata who)
        public
        view
        returns (uint256[] memory balances, bytes32[] memory hashes, uint256[] memory sizes)
    {
        balances = new uint256[](who.length);
        hashes = new bytes32[](who.length);
        sizes = new uint256[](who.length);
        for (uint256 i = 0; i < who.length; i++) {
            address a = who[i];
            balances[i] = a.balance;
            hashes[i] = a.codehash;
            sizes[i] = a.code.length;
        }
    }

    /// The same in a transaction (cold and warm accounts cost differently).
    function inspectLog(address[] calldata who) external {
        (uint256[] memory b, bytes32[] memory h, uint256[] memory s) = inspect(who);
        for (uint256 i = 0; i < who.length; i++) emit Inspected(who[i], b[i], h[i], s[i]);
        emit Inspected(address(this), address(this).balance, address(this).codehash, address(this).code.length);
    }

    /// The block and transaction environment. The test compares chainid,
    /// basefee, coinbase, blobbasefee, origin, gasprice and sender, and
    /// only reports the rest.
    function env()
        external
        view
        returns (
            uint256 chainid,
            uint256 basefee,
            address coinbase,
            uint256 blobbasefee,
            address origin,
            uint256 gasprice,
            address sender,
            uint256 number,
            uint256 timestamp,
            uint256 prevrandao,
            uint256 gaslimit,
            bytes32 parentHash
        )
    {
        chainid = block.chainid;
        basefee = block.basefee;
        coinbase = block.coinbase;
        blobbasefee = block.blobbasefee;
        origin = tx.origin;
        gasprice = tx.gasprice;
        sender = msg.sender;
        number = block.number;
        timestamp = block.timestamp;
        prevrandao = block.prevrandao;
        gaslimit = block.gaslimit;
        parentHash = blockhash(block.number - 1);
    }
}

/// No receive or fallback: plain value transfers to it fail.
contract NoReceive {
    uint256 public x = 1;
}

/// Created by `Factory`; stores its argument, holds value and can destroy
/// itself.
contract Child {
    event Born(address self, uint256 x, uint256 value, uint256 sizeInConstructor);
    uint256 public x;

    constructor(uint256 x_) payable {
        x = x_;
        uint256 size;
        assembly {
            size := extcodesize(address())
        }
        emit Born(address(this), x_, msg.value, size);
        if (x_ == 666) revert("constructor refused");
    }

    receive() external payable {}

    function kill(address payable to) external {
        selfdestruct(to);
    }
}

/// CREATE and CREATE2, with value, address prediction, failures, and
/// SELFDESTRUCT of children in the creating transaction and later.
contract Factory {
    event Created(address indexed child, bytes32 salt, uint256 value);
    event AfterKill(address child, uint256 codesize, uint256 balance, uint256 x);

    function make(uint256 x) external payable returns (address c) {
        c = address(new Child{value: msg.value}(x));
        emit Created(c, 0, msg.value);
    }

    function make2(bytes32 salt, uint256 x) external payable returns (address c) {
        c = address(new Child{salt: salt, value: msg.value}(x));
        emit Created(c, salt, msg.value);
    }

    function predict(bytes32 salt, uint256 x) external view returns (address) {
        bytes32 h = keccak256(abi.encodePacked(type(Child).creationCode, abi.encode(x)));
        return address(uint160(uint256(keccak256(abi.encodePacked(bytes1(0xff), address(this), salt, h)))));
    }

    /// CREATE (salt 0 and `create2` false) or CREATE2 of raw init code:
    /// address 0 when the creation fails (collision, revert, bad code).
    function makeRaw(bytes memory initcode, uint256 value, bool create2, bytes32 salt)
        external
        payable
        returns (address a)
    {
        if (create2) {
            assembly {
                a := create2(value, add(initcode, 32), mload(initcode), salt)
            }
        } else {
            assembly {
                a := create(value, add(initcode, 32), mload(initcode))
            }
        }
        emit Created(a, salt, value);
    }

    /// Creates a child with CREATE2 and destroys it in the same
    /// transaction (EIP-6780: the account goes), then sends it `after`
    /// wei, which goes with it.
    function makeAndKill(bytes32 salt, uint256 x, address payable to, uint256 afterKill)
        external
        payable
        returns (address c)
    {
        Child child = new Child{salt: salt, value: msg.value - afterKill}(x);
        c = address(child);
        child.kill(to);
        if (afterKill > 0) {
            (bool ok, ) = c.call{value: afterKill}("");
            require(ok, "pay after kill");
        }
        emit AfterKill(c, c.code.length, c.balance, child.x());
    }

    /// Destroys an existing child (EIP-6780: only its balance moves).
    function kill(address payable child, address payable to) external payable {
        Child(child).kill(to);
        if (msg.value > 0) {
            (bool ok, ) = child.call{value: msg.value}("");
            require(ok, "pay after kill");
        }
        emit AfterKill(child, child.code.length, child.balance, Child(child).x());
    }

    receive() external payable {}
}
