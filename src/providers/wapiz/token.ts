/**
 * WAPIZ's `wa_token`: a JWT that WAPIZ issues at `POST /api/auth/login {email, password}`
 * in an HTTP-only cookie, and that expires (WAPIZ's authentication page). The credentials
 * Secret holds a token, an account login (email and password), or both; with a login the
 * token is fetched when there is none and renewed when WAPIZ refuses it.
 *
 * Renewal is bounded: a request refused with 401 is sent again once, with a token newer
 * than the refused one; a 401 on that retry is the answer. Requests that meet the same
 * stale token share one login.
 */
import { ProviderError } from "../errors.ts";
import type { HttpResponse } from "../transport/http.ts";
import type { ProviderSettings } from "../types.ts";

/** Sends the login request; the caller's HTTP layer classifies a refusal (401 → InvalidCredentials). */
export type LoginCall = (login: { readonly email: string; readonly password: string }) => Promise<HttpResponse>;

export class WapizToken {
  readonly #login: ProviderSettings["login"];
  readonly #call: LoginCall;
  #token: string | undefined;
  #pending: Promise<string> | undefined;

  constructor(settings: Pick<ProviderSettings, "apiKey" | "login">, call: LoginCall) {
    this.#token = settings.apiKey || undefined;
    this.#login = settings.login;
    this.#call = call;
  }

  /** Whether a refused token can be replaced by logging in. */
  get renewable(): boolean {
    return this.#login !== undefined;
  }

  /** Everything secret this holds, for redacting provider text. */
  secrets(): (string | undefined)[] {
    return [this.#token, this.#login?.password];
  }

  /** The token to send: the one held, else one from a login. */
  current(): Promise<string> {
    if (this.#token !== undefined) return Promise.resolve(this.#token);
    if (this.#login === undefined) {
      return Promise.reject(
        new ProviderError("InvalidCredentials", "wapiz needs a token or an account login: set credentialsSecretRef on the provider"),
      );
    }
    return this.#renew();
  }

  /** A token newer than `refused`: the one another request already fetched, or a new login. */
  replace(refused: string): Promise<string> {
    if (this.#token !== undefined && this.#token !== refused) return Promise.resolve(this.#token);
    this.#token = undefined;
    return this.#renew();
  }

  #renew(): Promise<string> {
    this.#pending ??= this.#fetch().finally(() => {
      this.#pending = undefined;
    });
    return this.#pending;
  }

  async #fetch(): Promise<string> {
    const response = await this.#call(this.#login as NonNullable<ProviderSettings["login"]>);
    const token = cookieValue(response, "wa_token");
    if (token === undefined) throw new ProviderError("Malformed", "wapiz answered the login without a wa_token cookie");
    this.#token = token;
    return token;
  }
}

/** A cookie's value from the answer's Set-Cookie headers. */
function cookieValue(response: HttpResponse, name: string): string | undefined {
  // node:http always gives Set-Cookie as a list.
  for (const line of response.headers["set-cookie"] ?? []) {
    const [pair] = line.split(";");
    const separator = pair?.indexOf("=") ?? -1;
    if (pair !== undefined && separator > 0 && pair.slice(0, separator).trim() === name) {
      const value = pair.slice(separator + 1).trim();
      if (value !== "") return value;
    }
  }
  return undefined;
}
