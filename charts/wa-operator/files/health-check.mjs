// The `helm test` pod's check (templates/tests/health.yaml): /healthz and /readyz of the
// operator's Service answer 200, within 30 s (the pods may still be syncing their caches).
const base = process.env.OPERATOR_URL;
const deadline = Date.now() + Number(process.env.HEALTH_WAIT_MS ?? 30000);
for (const path of ["/healthz", "/readyz"]) {
  for (;;) {
    let status = "no answer";
    try {
      const answer = await fetch(`${base}${path}`, { signal: AbortSignal.timeout(2000) });
      status = `${answer.status} ${(await answer.text()).slice(0, 200)}`;
      if (answer.ok) {
        console.log(`${path}: ${status}`);
        break;
      }
    } catch (error) {
      status = error.cause?.code ?? error.message;
    }
    if (Date.now() > deadline) {
      console.error(`${base}${path}: ${status}`);
      process.exit(1);
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}
