/**
 * The API's provider vocabulary: the spec.type values and the observed phases. The API
 * layer names them but knows nothing of the modules behind them; src/providers/registry.ts
 * must hold exactly one module per type here (the compiler checks both ways), and the CRD
 * descriptions that list what each module does are filled in when the CRDs are rendered.
 */
export const PROVIDER_TYPES = ["waha", "cloud_api", "wappfy", "whapi", "wapiz", "evolution"] as const;
export type ProviderType = (typeof PROVIDER_TYPES)[number];

export const PHASES = ["Pending", "Starting", "ScanQR", "Connected", "Disconnected", "LoggedOut", "Failed"] as const;
export type Phase = (typeof PHASES)[number];

/**
 * A place in a description for a fact about the registered providers (which types adopt,
 * which have no event filter…). crds.ts replaces it from the registry; a test fails on one
 * left unreplaced. Written `{{name}}` so a schema read without rendering still says what goes there.
 */
export const registryFact = (name: string): string => `{{${name}}}`;
