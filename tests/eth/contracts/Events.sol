// SPDX-License-Identifier: Apache-2.0
// Events, custom errors and reverts for the Ethereum client tests
// (tests/eth/contracts.mjs, compiled there with solc-js). One `store` emits
// five logs: indexed and non-indexed arguments, an indexed string (its
// topic is the string's hash), an event with no indexed argument (topic0
// only) and an anonymous one (no topic0: its first topic is the key).
pragma solidity ^0.8.30;

contract Events {
    event Stored(address indexed by, uint256 indexed key, uint256 value, string note);
    event Counted(uint256 indexed count, bytes32 indexed noteHash, bool even);
    event Tagged(string indexed tag, address indexed who, int256 delta, bytes data);
    event Plain(uint256 value, string note);
    event Raw(uint256 indexed key, uint256 value) anonymous;

    error TooLarge(uint256 given, uint256 limit, address caller);
    error Empty(uint256 key);

    uint256 public constant LIMIT = 1000;
    uint256 public count;
    mapping(uint256 => uint256) public values;

    function store(uint256 key, uint256 value, string calldata note) external {
        if (value > LIMIT) revert TooLarge(value, LIMIT, msg.sender);
        require(bytes(note).length > 0, "note is empty");
        values[key] = value;
        count += 1;
        emit Stored(msg.sender, key, value, note);
        emit Counted(count, keccak256(bytes(note)), count % 2 == 0);
        emit Tagged(note, msg.sender, -int256(value), abi.encodePacked(uint64(key)));
        emit Plain(value, note);
        emit Raw(key, value);
    }

    /// The stored value; a custom error with an argument when none is.
    function get(uint256 key) external view returns (uint256) {
        uint256 v = values[key];
        if (v == 0) revert Empty(key);
        return v;
    }

    /// `require` with a message.
    function half(uint256 x) external pure returns (uint256) {
        require(x % 2 == 0, "odd number");
        return x / 2;
    }

    /// Division by zero: Panic(0x12).
    function ratio(uint256 a, uint256 b) external pure returns (uint256) {
        return a / b;
    }

    /// A revert without data.
    function bare() external pure {
        revert();
    }
}
