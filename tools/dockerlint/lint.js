#!/usr/bin/env node
// Lints Dockerfiles for infra/check.sh, nothing is built. Usage: node lint.js <context-dir> <Dockerfile>...
//
// 1. dockerfile-utils: the Docker builder's own parse rules (unknown flags, bad durations, ports, stage names, ...).
// 2. Policy rules of this repository, which no linter obtainable here covers (hadolint is not served by the npm or
//    Debian registries reachable here):
//    - base-image-tag     every FROM names an explicit tag or digest, never `latest` (ARG defaults resolved);
//    - copy-from-stage    COPY --from names an earlier build stage (an unknown name would be pulled as an image);
//    - build-context      each COPY/ADD source exists and gets past .dockerignore (its allow-list);
//    - prefer-copy        ADD only where its extra behaviour (URLs, tar extraction) is meant;
//    - final-user         the final stage switches to a non-root USER;
//    - final-healthcheck  the final stage has a HEALTHCHECK.
// A finding is accepted only when the instruction is preceded by `# dockerfile-utils: ignore` (dockerfile-utils'
// own inline marker, applied here to the policy rules too) and, directly above that, a comment saying why.
// Prints one line per Dockerfile (and one per finding); exits 1 on any finding.
'use strict';

const fs = require('fs');
const path = require('path');
const { DockerfileParser } = require('dockerfile-ast');
const dockerfileUtils = require('dockerfile-utils');
const dockerignore = require('@balena/dockerignore');

const IGNORE_MARKER = 'dockerfile-utils: ignore';

function listFiles(root, dir) {
  const out = [];
  for (const entry of fs.readdirSync(path.join(root, dir), { withFileTypes: true })) {
    const rel = dir ? `${dir}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...listFiles(root, rel));
    else out.push(rel);
  }
  return out;
}

function lint(contextDir, dockerfilePath) {
  const content = fs.readFileSync(dockerfilePath, 'utf8');
  const lines = content.split(/\r?\n/);
  const dockerfile = DockerfileParser.parse(content);
  const findings = [];
  const add = (line, rule, message) => findings.push({ line, rule, message });

  // Lines (0-based) of instructions that carry an inline ignore marker, and markers without a reason above them.
  const ignoredInstructionLines = new Set();
  for (const comment of dockerfile.getComments()) {
    if (comment.getContent() !== IGNORE_MARKER) continue;
    const line = comment.getRange().start.line;
    ignoredInstructionLines.add(line + 1);
    const above = line > 0 ? lines[line - 1].trim() : '';
    if (!/^#\s*\S/.test(above) || above.includes(IGNORE_MARKER)) {
      add(line, 'ignore-reason', `"# ${IGNORE_MARKER}" needs a comment line directly above it saying why`);
    }
  }

  // 1. dockerfile-utils (it already drops diagnostics on instructions under its marker).
  for (const d of dockerfileUtils.validate(content)) {
    add(d.range.start.line, 'dockerfile-utils', d.message);
  }

  // 2. Policy rules.
  const policy = (instruction, rule, message) => {
    const line = instruction.getRange().start.line;
    if (!ignoredInstructionLines.has(line)) add(line, rule, message);
  };

  const stages = [];
  for (const from of dockerfile.getFROMs()) {
    const image = from.getExpandedArguments().map((a) => a.getValue())[0] || '';
    const isStage = stages.includes(image);
    const tagOrDigest = /@sha256:[0-9a-f]{64}$/.test(image) || /:[^/:@]+$/.test(image);
    if (!isStage && image !== 'scratch' && (!tagOrDigest || /:latest$/.test(image))) {
      policy(from, 'base-image-tag', `base image "${image}" needs an explicit tag (not latest) or digest`);
    }
    if (from.getBuildStage()) stages.push(from.getBuildStage());
  }

  const ignoreFile = path.join(contextDir, '.dockerignore');
  const ig = dockerignore({ ignorecase: false });
  if (fs.existsSync(ignoreFile)) ig.add(fs.readFileSync(ignoreFile, 'utf8'));

  const seenStages = [];
  for (const instruction of dockerfile.getInstructions()) {
    const keyword = instruction.getKeyword();
    if (keyword === 'FROM') {
      if (instruction.getBuildStage()) seenStages.push(instruction.getBuildStage());
      continue;
    }
    if (keyword !== 'COPY' && keyword !== 'ADD') continue;
    if (keyword === 'ADD') policy(instruction, 'prefer-copy', 'use COPY unless ADD\'s URL or tar handling is meant');
    const fromFlag = instruction.getFromFlag ? instruction.getFromFlag() : null;
    const sources = instruction.getArguments().map((a) => a.getValue()).slice(0, -1);
    if (fromFlag) {
      if (!seenStages.includes(fromFlag.getValue())) {
        policy(instruction, 'copy-from-stage', `--from=${fromFlag.getValue()} is not an earlier build stage`);
      }
      continue;
    }
    for (const source of sources) {
      if (/^[a-z]+:\/\//.test(source)) continue;
      const rel = path.posix.normalize(source).replace(/^\.\/?/, '').replace(/\/$/, '');
      const full = path.join(contextDir, rel);
      if (rel === '' || rel.startsWith('..') || !fs.existsSync(full)) {
        policy(instruction, 'build-context', `source "${source}" is not a file or folder of the build context`);
        continue;
      }
      // Only what is copied is walked (the context also holds node_modules and build output).
      const files = fs.statSync(full).isDirectory() ? listFiles(contextDir, rel) : [rel];
      if (!files.some((f) => !ig.ignores(f))) {
        policy(instruction, 'build-context', `source "${source}" is excluded by .dockerignore`);
      }
    }
  }

  const finalStage = dockerfile.getFROMs().length > 0
    ? dockerfile.getInstructions().filter((i) => i.getRange().start.line >= dockerfile.getFROMs().slice(-1)[0].getRange().start.line)
    : [];
  const users = finalStage.filter((i) => i.getKeyword() === 'USER');
  const lastFrom = dockerfile.getFROMs().slice(-1)[0];
  if (lastFrom) {
    const user = users.length ? users[users.length - 1].getArguments().map((a) => a.getValue()).join(' ') : '';
    if (!user || /^(root|0)(:|$)/.test(user)) {
      policy(users.length ? users[users.length - 1] : lastFrom, 'final-user', 'the final stage must run as a non-root USER');
    }
    if (!finalStage.some((i) => i.getKeyword() === 'HEALTHCHECK')) {
      policy(lastFrom, 'final-healthcheck', 'the final stage needs a HEALTHCHECK');
    }
  }

  return findings.sort((a, b) => a.line - b.line);
}

function main() {
  const [contextDir, ...dockerfiles] = process.argv.slice(2);
  if (!contextDir || dockerfiles.length === 0) {
    console.error('usage: node lint.js <context-dir> <Dockerfile>...');
    process.exit(2);
  }
  let failed = false;
  for (const file of dockerfiles) {
    const findings = lint(contextDir, file);
    const name = path.relative(contextDir, path.resolve(file));
    if (findings.length === 0) {
      console.log(`ok    ${name}`);
      continue;
    }
    failed = true;
    console.log(`FAIL  ${name}: ${findings.length} finding(s)`);
    for (const f of findings) console.log(`      ${name}:${f.line + 1}: [${f.rule}] ${f.message}`);
  }
  process.exit(failed ? 1 : 0);
}

main();
