#!/usr/bin/env node
/**
 * The kubectl-whatsapp executable (package.json bin, and the entry of the bundle that
 * krew installs). It checks the Node version before loading the command, whose
 * dependencies would otherwise fail on an old Node with a stack trace.
 */
import { nodeCanRun } from "../build-info.ts";

if (nodeCanRun("kubectl-whatsapp")) void import("../cli/kubectl-whatsapp.ts");
