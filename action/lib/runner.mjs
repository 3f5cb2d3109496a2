// @ts-check
// The runner's side of a JavaScript action, as the runner speaks it (no
// @actions/* packages: the action runs as committed, with no dependencies):
//
//   inputs           INPUT_<NAME> (name upper-cased, spaces as _, hyphens kept)
//   later steps' env lines appended to the file $GITHUB_ENV
//   later steps' PATH lines appended to $GITHUB_PATH (prepended by the runner)
//   main -> post     lines appended to $GITHUB_STATE, read back as STATE_<name>
//   outputs          lines appended to $GITHUB_OUTPUT
//   job summary      Markdown appended to $GITHUB_STEP_SUMMARY
//   annotations      "::warning::message" on stdout
// File lines use the multi-line form NAME<<DELIMITER\nvalue\nDELIMITER, which
// is safe for any value.

import { randomUUID } from "node:crypto";
import { appendFileSync } from "node:fs";
import { delimiter } from "node:path";

/** An input's value, trimmed ("" when not given). */
export function input(name) {
  return (process.env[`INPUT_${name.replace(/ /g, "_").toUpperCase()}`] ?? "").trim();
}

/** A true/false input; anything else falls back to `dflt` with a warning. */
export function boolInput(name, dflt) {
  const v = input(name).toLowerCase();
  if (v === "true") return true;
  if (v === "false") return false;
  if (v !== "") warning(`input ${name}: expected true or false, got ${JSON.stringify(v)}; using ${dflt}`);
  return dflt;
}

function appendKeyValue(fileVar, name, value) {
  const file = process.env[fileVar];
  if (!file) throw new Error(`${fileVar} is not set (not running on a GitHub Actions runner?)`);
  const delimiter = `ghadelimiter_${randomUUID()}`;
  appendFileSync(file, `${name}<<${delimiter}\n${value}\n${delimiter}\n`);
}

/** Sets an environment variable for the steps after this one (and this process). */
export function exportVariable(name, value) {
  appendKeyValue("GITHUB_ENV", name, value);
  process.env[name] = value;
}

export function addPath(dir) {
  const file = process.env.GITHUB_PATH;
  if (!file) throw new Error("GITHUB_PATH is not set (not running on a GitHub Actions runner?)");
  appendFileSync(file, `${dir}\n`);
  process.env.PATH = `${dir}${delimiter}${process.env.PATH ?? ""}`;
}

export function saveState(name, value) {
  appendKeyValue("GITHUB_STATE", name, value);
}

export function getState(name) {
  return process.env[`STATE_${name}`] ?? "";
}

export function setOutput(name, value) {
  if (process.env.GITHUB_OUTPUT) appendKeyValue("GITHUB_OUTPUT", name, value);
}

/** Appends Markdown to the job summary; false if there is none (or it cannot be written). */
export function appendSummary(markdown) {
  const file = process.env.GITHUB_STEP_SUMMARY;
  if (!file) return false;
  try {
    appendFileSync(file, markdown.endsWith("\n") ? markdown : `${markdown}\n`);
    return true;
  } catch {
    return false;
  }
}

function escapeData(s) {
  return s.replace(/%/g, "%25").replace(/\r/g, "%0D").replace(/\n/g, "%0A");
}

export function warning(message) {
  process.stdout.write(`::warning title=gostash::${escapeData(message)}\n`);
}

export function info(message) {
  process.stdout.write(`${message}\n`);
}

export function group(title, body) {
  process.stdout.write(`::group::${escapeData(title)}\n${body.endsWith("\n") ? body : `${body}\n`}::endgroup::\n`);
}
