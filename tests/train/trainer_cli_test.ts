/**
 * The CLIs as a user meets them: config errors end in one line naming file, line and key; export's
 * usage errors likewise; and the embedded default run (config/default.yaml, reduced to a few steps)
 * writes a model folder that `deno task generate` loads.
 */
import { assert, assertEquals } from "../assert.ts";

const ROOT = new URL("../../", import.meta.url).pathname;

async function run(
  script: string,
  args: string[],
): Promise<{ code: number; stderr: string; stdout: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${ROOT}${script}`, ...args],
    cwd: ROOT,
    env: { XDG_RUNTIME_DIR: "/tmp", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test("train CLI: a config error is one line naming file, line and key", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/bad.yaml`;
    await Deno.writeTextFile(file, "model_name_or_path: m\ndataset: d\noutput_dir: o\nlearning_rate: fast\n");
    const r = await run("cli/train.ts", [file]);
    assertEquals(r.code, 1);
    assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
    assertEquals(r.stderr.trim(), `error: ${file}:4: learning_rate: expected a number, got "fast"`);
    const o = await run("cli/train.ts", [file, "learning_rate=1e-3", "lora_rnk=4"]);
    assert(
      /^error: override 'lora_rnk=4': lora_rnk: unknown key \(did you mean lora_rank\?\)$/.test(
        o.stderr.trim(),
      ),
      o.stderr,
    );
    const m = await run("cli/train.ts", [file, "learning_rate=1e-3", `output_dir=${dir}/out`]);
    assertEquals(m.stderr.trim(), "error: model_name_or_path: m does not exist");
    assertEquals(
      (await Array.fromAsync(Deno.readDir(dir))).map((e) => e.name),
      ["bad.yaml"],
      "nothing written",
    );
    const e = await run("cli/export.ts", ["--model", "x"]);
    assertEquals([e.code, e.stderr.split("\n")[0]], [1, "error: --model and --out are required"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train CLI: the default run, reduced to 3 steps, writes a model generate loads", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const r = await run("cli/train.ts", [
      "config/default.yaml",
      "max_steps=3",
      "logging_steps=1",
      `output_dir=${dir}/out`,
      "per_device_eval_batch_size=72",
    ]);
    assertEquals(r.code, 0, r.stderr);
    assert(/done in .*eval_loss .*eval_accuracy /.test(r.stderr), r.stderr);
    for (
      const f of [
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "trainer_log.jsonl",
        "training_loss.png",
      ]
    ) {
      assert((await Deno.stat(`${dir}/out/${f}`)).isFile, f);
    }
    const log = (await Deno.readTextFile(`${dir}/out/trainer_log.jsonl`)).trim().split("\n").map((l) =>
      JSON.parse(l)
    );
    assertEquals(log.filter((e) => e.loss !== undefined).map((e) => e.current_steps), [1, 2, 3]);
    const g = await run("cli/generate.ts", [
      "--model",
      `${dir}/out`,
      "--prompt",
      "患者信息:",
      "--max-new-tokens",
      "4",
      "--json",
    ]);
    assertEquals(g.code, 0, g.stderr);
    assertEquals(JSON.parse(g.stdout).token_ids.length > 0, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("train + export CLIs: a LoRA run's output loads with generate --adapter, and merged", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cols = { prompt: "instruction", query: "input", response: "output" };
    await Deno.mkdir(`${dir}/data`);
    await Deno.writeTextFile(
      `${dir}/data/dataset_info.json`,
      JSON.stringify({ toy: { file_name: "toy.json", formatting: "alpaca", columns: cols } }),
    );
    const rows = ["hi", "bye", "red", "blue"].map((w) => ({ instruction: `Say ${w}`, input: "", output: w }));
    await Deno.writeTextFile(`${dir}/data/toy.json`, JSON.stringify(rows));
    await Deno.writeTextFile(
      `${dir}/lora.yaml`,
      [
        "model:",
        "  name_or_path: tests/testdata/llama",
        "  finetuning_type: lora",
        "  lora_rank: 4",
        "  target_modules: [q_proj, v_proj]",
        "data:",
        "  dataset: toy",
        `  dataset_dir: ${dir}/data`,
        "  template: default",
        "train:",
        "  max_steps: 4",
        "  per_device_train_batch_size: 2",
        "  logging_steps: 2",
        `  output_dir: ${dir}/out`,
      ].join("\n"),
    );
    const t = await run("cli/train.ts", [`${dir}/lora.yaml`]);
    assertEquals(t.code, 0, t.stderr);
    const prompt = ["--prompt", "Human: Say hi\nAssistant:", "--max-new-tokens", "3", "--json"];
    const g = await run("cli/generate.ts", [
      "--model",
      "tests/testdata/llama",
      "--adapter",
      `${dir}/out`,
      ...prompt,
    ]);
    assertEquals(g.code, 0, g.stderr);
    const e = await run("cli/export.ts", [
      "--model",
      "tests/testdata/llama",
      "--adapter",
      `${dir}/out`,
      "--out",
      `${dir}/merged`,
    ]);
    assertEquals(e.code, 0, e.stderr);
    assert(/^merged 4 layers; wrote /.test(e.stderr), e.stderr);
    const m = await run("cli/generate.ts", ["--model", `${dir}/merged`, ...prompt]);
    assertEquals(m.code, 0, m.stderr);
    // Greedy tokens of base+adapter and of the merged model agree.
    assertEquals(JSON.parse(m.stdout).token_ids, JSON.parse(g.stdout).token_ids);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
