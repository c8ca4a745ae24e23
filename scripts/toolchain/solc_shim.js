#!/usr/bin/env node
// Command-line face of solc-js for py-solc-x (and so Brownie): native solc binaries cannot be
// downloaded here, the WebAssembly build from npm can. Installed as `solc-v<version>` in the
// folder SOLCX_BINARY_PATH names. Speaks the two calls py-solc-x makes: `--version` and
// `--standard-json` (JSON on stdin, JSON on stdout).
"use strict";
const fs = require("fs");
const path = require("path");

const projectRoot = process.env.CITY_TOKEN_ROOT || path.resolve(__dirname, "..", "..");
const solc = require(path.join(projectRoot, "node_modules", "solc"));
const args = process.argv.slice(2);

// A blocking write: process.stdout.write followed by process.exit cuts a pipe at 64-128 KiB.
function writeAll(text) {
  const buffer = Buffer.from(text, "utf8");
  let offset = 0;
  while (offset < buffer.length) {
    try {
      offset += fs.writeSync(1, buffer, offset, buffer.length - offset);
    } catch (error) {
      if (error.code !== "EAGAIN") throw error;
    }
  }
}

function optionValues(name) {
  const values = [];
  args.forEach((arg, index) => {
    if (arg === name && args[index + 1]) values.push(...args[index + 1].split(","));
  });
  return values;
}

if (args.includes("--version")) {
  writeAll(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
  process.exit(0);
}

if (!args.includes("--standard-json")) {
  process.stderr.write("solc shim: only --version and --standard-json are supported\n");
  process.exit(2);
}

const searchRoots = [process.cwd(), ...optionValues("--allow-paths"), ...optionValues("--base-path")];

function findImports(importPath) {
  const candidates = path.isAbsolute(importPath)
    ? [importPath]
    : searchRoots.map((root) => path.resolve(root, importPath));
  for (const candidate of candidates) {
    if (fs.existsSync(candidate)) return { contents: fs.readFileSync(candidate, "utf8") };
  }
  return { error: `File not found: ${importPath} (searched ${searchRoots.join(", ")})` };
}

const input = fs.readFileSync(0, "utf8");
writeAll(solc.compile(input, { import: findImports }));
