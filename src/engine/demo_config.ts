/**
 * The demo's `/demo/config.json`, written by server/demo_routes.ts and read by the page: which model folder
 * (and adapter) to open and the fingerprint of each folder (cache keys follow it).
 */

/** Body of `GET /demo/config.json`. */
export interface DemoConfig {
  /** Root of the model folders, relative to the page (default "../models/"). */
  modelsUrl: string;
  /** Folder name under modelsUrl. */
  model: string;
  /** PEFT adapter folder under modelsUrl, or null for the base model. */
  adapter: string | null;
  /** Folder name → fingerprint of its files (names, sizes, modification times). */
  versions: Record<string, string>;
  /** Default of the form's "max new tokens". */
  maxNewTokens: number;
}
