/** metav1.LabelSelector matching, as the API server does it (an empty selector matches everything). */

export interface LabelSelectorLike {
  readonly matchLabels?: Readonly<Record<string, string>> | undefined;
  readonly matchExpressions?: readonly { readonly key: string; readonly operator: string; readonly values?: readonly string[] | undefined }[] | undefined;
}

export function matchesSelector(selector: LabelSelectorLike, labels: Readonly<Record<string, string>> | undefined): boolean {
  const have = labels ?? {};
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) if (have[key] !== value) return false;
  for (const expression of selector.matchExpressions ?? []) {
    const present = Object.hasOwn(have, expression.key);
    const values = expression.values ?? [];
    switch (expression.operator) {
      case "In":
        if (!present || !values.includes(have[expression.key] as string)) return false;
        break;
      case "NotIn":
        if (present && values.includes(have[expression.key] as string)) return false;
        break;
      case "Exists":
        if (!present) return false;
        break;
      case "DoesNotExist":
        if (present) return false;
        break;
      default:
        // An operator we do not know matches nothing: refusing is the safe side of a tenant boundary.
        return false;
    }
  }
  return true;
}
