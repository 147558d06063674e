/** gradient_checkpointing_layers: parsed, checked against gradient_checkpointing, turned into the model option. */
import { assertEquals, assertThrows } from "../assert.ts";
import { checkpointOption, configToYaml, parseConfig } from "../../src/train/config.ts";

const base = "model_name_or_path: m\ndataset: d\noutput_dir: out\n";

Deno.test("gradient_checkpointing_layers: a layer count with gradient_checkpointing true", () => {
  assertEquals(checkpointOption(parseConfig(base, "a.yaml")), false);
  assertEquals(checkpointOption(parseConfig(`${base}gradient_checkpointing: true\n`, "a.yaml")), true);
  const c = parseConfig(`${base}gradient_checkpointing: true\ngradient_checkpointing_layers: 4\n`, "a.yaml");
  assertEquals(c.gradient_checkpointing_layers, 4);
  assertEquals(checkpointOption(c), 4);
  // The seed's sectioned layout and key=value overrides reach it too; the resolved YAML keeps it.
  const d = parseConfig(`${base}gradient_checkpointing: true\n`, "a.yaml", [
    "train.gradient_checkpointing_layers=2",
  ]);
  assertEquals(checkpointOption(d), 2);
  assertEquals(checkpointOption(parseConfig(configToYaml(d), "b.yaml")), 2);
});

Deno.test("gradient_checkpointing_layers: errors name the file, line and key", () => {
  assertThrows(
    () => parseConfig(`${base}gradient_checkpointing_layers: 4\n`, "a.yaml"),
    /a\.yaml:4: gradient_checkpointing_layers: needs gradient_checkpointing: true/,
  );
  assertThrows(
    () => parseConfig(`${base}gradient_checkpointing: true\ngradient_checkpointing_layers: -1\n`, "a.yaml"),
    /a\.yaml:5: gradient_checkpointing_layers: must be ≥ 0/,
  );
  assertThrows(
    () => parseConfig(`${base}gradient_checkpointing: true\ngradient_checkpointing_layers: 1.5\n`, "a.yaml"),
    /gradient_checkpointing_layers: expected an integer/,
  );
});
