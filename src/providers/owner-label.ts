/**
 * Ownership written into a name, for providers that store nothing of ours but a name or
 * label (Wappfy's instance name, WAPIZ's device label). `<readable part> [<uid>]`: the uid
 * of the WhatsAppInstance makes the name one that no other resource can share — not another
 * instance, not the same name re-created later, not one typed by hand — so a name that
 * carries our uid is the proof that the operator created it for this resource.
 */

const OWNED = /^(.*) \[([^\s[\]]+)\]$/;

/** `label [uid]`. */
export function ownedLabel(label: string, uid: string): string {
  return `${label} [${uid}]`;
}

/** The uid a name carries, or undefined for a name made without one (by hand, or before names carried it). */
export function ownerOfLabel(label: string | null | undefined): string | undefined {
  return label ? OWNED.exec(label)?.[2] : undefined;
}
