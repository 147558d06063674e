/**
 * The page's two languages. The prompt sent to the model is always the medical_inquiry template's
 * (Chinese field names, as the adapter was trained); the toggle changes the page, not the prompt format.
 */

/** Page languages. */
export type Lang = "zh" | "en";

const zh = {
  title: "webtune 诊断演示",
  toggle: "English",
  gpu: "WebGPU 适配器",
  model: "模型",
  adapter: "LoRA 适配器",
  clearCache: "清除模型缓存",
  patientInfo: "患者信息",
  symptoms: "症状描述",
  testResults: "检查结果",
  maxTokens: "最多生成词元",
  example: "填入示例",
  stop: "停止",
  submit: "生成诊断建议",
  answer: "诊断建议",
  disclaimer: "本演示仅供研究,生成内容不构成医疗建议;请咨询执业医师。病例只在本机浏览器中处理,不会上传。",
  none: "无",
  starting: "正在启动 WebGPU…",
  weightsF32: "f32 权重(无 shader-f16)",
  weightsF16: "f16 权重",
  subgroups: "subgroups",
  fallback: "软件渲染(CPU,较慢)",
  warmup: "编译 GPU 内核…",
  downloading: (file: string, done: string, total: string) => `下载 ${file}:${done} / ${total}`,
  fromCache: (file: string, size: string) => `${file}:已从浏览器缓存读取(${size})`,
  uploading: (done: number, total: number) => `权重上传到 GPU:${done} / ${total}`,
  ready: (ms: number, net: string, cached: string) =>
    `模型已就绪(${(ms / 1000).toFixed(1)} 秒;下载 ${net},缓存 ${cached})`,
  generating: "生成中…",
  speed: (tps: number, n: number) => `${tps.toFixed(1)} 词元/秒 · ${n} 个词元`,
  finish: { eos: "完成", stop: "遇到停止词", length: "达到长度上限", cancelled: "已停止" },
  cacheCleared: "模型缓存已清除;重新加载页面会重新下载。",
  noWebGpu:
    "此浏览器不支持 WebGPU(没有 navigator.gpu)。请使用新版 Chrome 或 Edge、Safari 26 或 Firefox 141 及以上;" +
    "Linux 上的 Chromium 需加启动参数 --enable-unsafe-webgpu;页面须通过 https 或 localhost 打开。",
  noAdapter: "浏览器支持 WebGPU,但没有可用的适配器:GPU 可能被列入黑名单或关闭了硬件加速(见 chrome://gpu)。" +
    "Linux 上的 Chromium 需加启动参数 --enable-unsafe-webgpu。",
  loadFailed: "模型加载失败:",
  failed: "生成失败:",
};

const en: typeof zh = {
  title: "webtune diagnosis demo",
  toggle: "中文",
  gpu: "WebGPU adapter",
  model: "Model",
  adapter: "LoRA adapter",
  clearCache: "Clear model cache",
  patientInfo: "Patient information",
  symptoms: "Symptoms",
  testResults: "Test results",
  maxTokens: "Max new tokens",
  example: "Fill in an example",
  stop: "Stop",
  submit: "Suggest a diagnosis",
  answer: "Suggested diagnosis",
  disclaimer:
    "A research demo: the output is not medical advice; consult a physician. The case is processed " +
    "in this browser only and never uploaded.",
  none: "none",
  starting: "Starting WebGPU…",
  weightsF32: "f32 weights (no shader-f16)",
  weightsF16: "f16 weights",
  subgroups: "subgroups",
  fallback: "software adapter (CPU, slow)",
  warmup: "Compiling GPU kernels…",
  downloading: (file, done, total) => `Downloading ${file}: ${done} / ${total}`,
  fromCache: (file, size) => `${file}: read from the browser cache (${size})`,
  uploading: (done, total) => `Uploading weights to the GPU: ${done} / ${total}`,
  ready: (ms, net, cached) =>
    `Model ready (${(ms / 1000).toFixed(1)} s; downloaded ${net}, cached ${cached})`,
  generating: "Generating…",
  speed: (tps, n) => `${tps.toFixed(1)} tokens/s · ${n} tokens`,
  finish: { eos: "done", stop: "stop word", length: "length limit", cancelled: "stopped" },
  cacheCleared: "Model cache cleared; reloading the page downloads the model again.",
  noWebGpu:
    "This browser has no WebGPU (navigator.gpu is missing). Use a current Chrome or Edge, Safari 26 or " +
    "Firefox 141 and later; Chromium on Linux needs the flag --enable-unsafe-webgpu; open the page over " +
    "https or localhost.",
  noAdapter: "This browser has WebGPU but offers no adapter: the GPU may be blocklisted or hardware " +
    "acceleration is off (see chrome://gpu). Chromium on Linux needs the flag --enable-unsafe-webgpu.",
  loadFailed: "Loading the model failed: ",
  failed: "Generation failed: ",
};

/** Strings of a language. */
export type Strings = typeof zh;

/** The strings of `lang`. */
export function strings(lang: Lang): Strings {
  return lang === "en" ? en : zh;
}

/** An example case per language (the Chinese one is from data/default/test.json). */
export const EXAMPLES: Record<Lang, { patient_info: string; symptoms: string; test_results: string }> = {
  zh: {
    patient_info: "患者女,35岁,吸烟",
    symptoms: "手抖、脾气急躁、失眠、食欲亢进但体重下降、心慌10周",
    test_results: "TSH受体抗体示阳性,甲状腺功能示TSH降低,游离T4升高。",
  },
  en: {
    patient_info: "Female, 35, smoker",
    symptoms:
      "Tremor, irritability, insomnia, increased appetite with weight loss, palpitations for 10 weeks",
    test_results: "TSH receptor antibodies positive; TSH low, free T4 high.",
  },
};

/** Bytes as "1.2 MB". */
export function formatBytes(n: number | null): string {
  if (n === null) return "?";
  if (n < 1024) return `${n} B`;
  const units = ["KB", "MB", "GB"];
  let v = n / 1024, u = 0;
  while (v >= 1024 && u < units.length - 1) (v /= 1024, u++);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[u]}`;
}
