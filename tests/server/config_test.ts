/** Server settings: flags win over WEBTUNE_* variables, API keys from env and file, clear errors. */
import { assert, assertEquals, assertRejects } from "../assert.ts";
import { loadConfig } from "../../server/config.ts";
import { TESTDATA } from "../model/golden.ts";

Deno.test("config: flags over env, keys from env and file, scheduler numbers", async () => {
  const file = await Deno.makeTempFile();
  try {
    await Deno.writeTextFile(file, "# keys\nsk-file-1\n\n  sk-file-2  \n");
    const c = await loadConfig(
      ["--model", `${TESTDATA}/llama`, "--slots", "4", "--api-keys-file", file, "--log-bodies"],
      {
        WEBTUNE_MODEL: "/elsewhere",
        WEBTUNE_SLOTS: "9",
        WEBTUNE_CHUNK: "8",
        WEBTUNE_API_KEYS: "sk-env, sk-env2",
        WEBTUNE_CORS: "https://a.example,https://b.example",
        WEBTUNE_PORT: "9001",
      },
    );
    assertEquals(c.init.model, `${TESTDATA}/llama`);
    assertEquals(c.init.name, "llama");
    assertEquals([c.init.scheduler?.slots, c.init.scheduler?.chunkSize], [4, 8]);
    assertEquals(c.app.apiKeys, ["sk-env", "sk-env2", "sk-file-1", "sk-file-2"]);
    assertEquals(c.app.corsOrigins, ["https://a.example", "https://b.example"]);
    assertEquals([c.port, c.host, c.app.logBodies], [9001, "127.0.0.1", true]);
  } finally {
    await Deno.remove(file);
  }
});

Deno.test("config: errors name the flag and the fix", async () => {
  const m = ["--model", `${TESTDATA}/llama`];
  await assertRejects(
    () => loadConfig([...m, "--slots", "0"], {}),
    /--slots \(WEBTUNE_SLOTS\) 0: want an integer ≥ 1/,
  );
  await assertRejects(() => loadConfig(m, { WEBTUNE_CHUNK: "x" }), /--chunk \(WEBTUNE_CHUNK\) x/);
  await assertRejects(() => loadConfig([...m, "--dtype", "bf16"], {}), /--dtype bf16: want f16 or f32/);
  await assertRejects(
    () => loadConfig([...m, "--api-keys-file", "/nonexistent/keys"], {}),
    /--api-keys-file \/nonexistent\/keys/,
  );
  await assertRejects(() => loadConfig(["--bogus"], {}), /bogus/);
  const cwd = Deno.cwd();
  const empty = await Deno.makeTempDir();
  Deno.chdir(empty);
  try {
    const e = await assertRejects(() => loadConfig([], {}), /no model: pass --model DIR/);
    assert(e.message.includes("output/default"));
  } finally {
    Deno.chdir(cwd);
    await Deno.remove(empty);
  }
});
