/**
 * spec.session for the Cloud API: the number's business profile (Graph API
 * `GET/POST /{phone-number-id}/whatsapp_business_profile`, cloud-api-openapi-v23.0.yaml).
 * It has a read of its own, made only when due; a POST changes only the fields it names.
 */
import { sameValue, type BusinessProfile, type SessionField, type SessionHook, type SessionSettings } from "../session-settings.ts";

/** The profile fields spec.session manages (only those set). */
export type CloudApiSessionSettings = { readonly businessProfile?: BusinessProfile };

const PROFILE_FIELDS = ["about", "description", "email", "websites", "vertical", "address"] as const;

export const cloudApiSession: SessionHook<CloudApiSessionSettings> = {
  supports: ["businessProfile"],
  observedWith: "read",
  applyRestartsSession: false,
  desired(settings: SessionSettings): CloudApiSessionSettings {
    const profile = settings.businessProfile;
    if (!profile) return {};
    return { businessProfile: Object.fromEntries(PROFILE_FIELDS.flatMap((field) => (profile[field] !== undefined ? [[field, profile[field]]] : []))) };
  },
  drift(observed: CloudApiSessionSettings, desired: CloudApiSessionSettings): readonly SessionField[] {
    const wanted = desired.businessProfile;
    if (!wanted) return [];
    const current = observed.businessProfile ?? {};
    return PROFILE_FIELDS.some((field) => wanted[field] !== undefined && !sameValue(current[field] ?? (field === "websites" ? [] : ""), wanted[field])) ? ["businessProfile"] : [];
  },
};
