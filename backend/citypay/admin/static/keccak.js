"use strict";
// Keccak-256 (Ethereum's, not NIST SHA3-256), for one purpose: the EIP-55 checksum of the
// address a browser wallet gives, which EIP-4361 requires in the sign-in message (wallets give
// it in lower case). Lanes as BigInt: slow, but a sign-in hashes 40 bytes once.
(() => {
  const MASK = (1n << 64n) - 1n;
  const ROTATIONS = [
    0, 1, 62, 28, 27, 36, 44, 6, 55, 20, 3, 10, 43, 25, 39, 41, 45, 15, 21, 8, 18, 2, 61, 56, 14,
  ];
  const ROUND_CONSTANTS = [
    0x0000000000000001n, 0x0000000000008082n, 0x800000000000808an, 0x8000000080008000n,
    0x000000000000808bn, 0x0000000080000001n, 0x8000000080008081n, 0x8000000000008009n,
    0x000000000000008an, 0x0000000000000088n, 0x0000000080008009n, 0x000000008000000an,
    0x000000008000808bn, 0x800000000000008bn, 0x8000000000008089n, 0x8000000000008003n,
    0x8000000000008002n, 0x8000000000000080n, 0x000000000000800an, 0x800000008000000an,
    0x8000000080008081n, 0x8000000000008080n, 0x0000000080000001n, 0x8000000080008008n,
  ];
  const rotl = (x, n) => (n === 0 ? x : ((x << BigInt(n)) | (x >> BigInt(64 - n))) & MASK);

  function permute(a) {
    for (const rc of ROUND_CONSTANTS) {
      const c = [0, 1, 2, 3, 4].map((x) => a[x] ^ a[x + 5] ^ a[x + 10] ^ a[x + 15] ^ a[x + 20]);
      for (let x = 0; x < 5; x++) {
        const d = c[(x + 4) % 5] ^ rotl(c[(x + 1) % 5], 1);
        for (let y = 0; y < 25; y += 5) a[y + x] ^= d;
      }
      const b = new Array(25);
      for (let x = 0; x < 5; x++) {
        for (let y = 0; y < 5; y++) {
          b[y + 5 * ((2 * x + 3 * y) % 5)] = rotl(a[x + 5 * y], ROTATIONS[x + 5 * y]);
        }
      }
      for (let y = 0; y < 25; y += 5) {
        for (let x = 0; x < 5; x++) {
          a[y + x] = b[y + x] ^ (~b[y + ((x + 1) % 5)] & MASK & b[y + ((x + 2) % 5)]);
        }
      }
      a[0] ^= rc;
    }
  }

  function keccak256(bytes) {
    const rate = 136;
    const padded = new Uint8Array(Math.ceil((bytes.length + 1) / rate) * rate);
    padded.set(bytes);
    padded[bytes.length] ^= 0x01;
    padded[padded.length - 1] ^= 0x80;
    const state = new Array(25).fill(0n);
    for (let offset = 0; offset < padded.length; offset += rate) {
      for (let i = 0; i < rate / 8; i++) {
        let lane = 0n;
        for (let j = 7; j >= 0; j--) lane = (lane << 8n) | BigInt(padded[offset + i * 8 + j]);
        state[i] ^= lane;
      }
      permute(state);
    }
    let hex = "";
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 8; j++) {
        hex += Number((state[i] >> BigInt(8 * j)) & 0xffn).toString(16).padStart(2, "0");
      }
    }
    return hex;
  }

  function checksumAddress(address) {
    const lower = address.toLowerCase().replace(/^0x/, "");
    const hash = keccak256(new TextEncoder().encode(lower));
    let out = "0x";
    for (let i = 0; i < 40; i++) {
      out += parseInt(hash[i], 16) >= 8 ? lower[i].toUpperCase() : lower[i];
    }
    return out;
  }

  const target = typeof window !== "undefined" ? window : globalThis;
  target.keccak256 = keccak256;
  target.checksumAddress = checksumAddress;
})();
