/**
 * Hugging Face formats: the FileSystem adapter, safetensors, config.json / generation_config.json,
 * tokenizer.json + chat templates, PEFT adapters.
 *
 * @example
 * import { HfTokenizer, loadModelConfig, openSafetensors } from "./src/io/mod.ts";
 */
export * from "./fs.ts";
export * from "./http_fs.ts";
export * from "./dtypes.ts";
export * from "./safetensors.ts";
export * from "./config.ts";
export * from "./tokenizer.ts";
export * from "./peft.ts";
