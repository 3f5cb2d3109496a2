// Loaded before every test file (bunfig.toml [test] preload). A top-level
// afterAll here runs once, after the last test of the whole run.
import { afterAll } from "bun:test";
import { endTestRun } from "./helpers/env.ts";

afterAll(endTestRun);
