/**
 * Preloaded (`node --import`) into the operator the benchmark runs: ends the process when
 * the benchmark that started it is gone, even if that one was killed with SIGKILL and
 * could not clean up. Checks every 2 s on an unref'd timer, so it keeps nothing alive.
 * Plain JavaScript: a TypeScript preload would load Node's type stripper into the compiled
 * operator and count its memory as the operator's.
 */
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.kill(process.pid, "SIGTERM");
}, 2_000).unref();
