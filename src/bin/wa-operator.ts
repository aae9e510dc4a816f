#!/usr/bin/env node
/**
 * The wa-operator executable (package.json bin, and what `npm start` runs). It checks
 * the Node version before loading the operator, whose dependencies would otherwise fail
 * on an old Node with a stack trace.
 */
import { nodeCanRun } from "../build-info.ts";

if (nodeCanRun("wa-operator")) void import("../cli/operator.ts");
