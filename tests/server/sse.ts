/** Test helper: reads a text/event-stream body the way OpenAI's client does (data lines, [DONE]). */

/** Every `data:` JSON object of the stream and whether it ended with `data: [DONE]`. */
export async function readSse(res: Response): Promise<{ events: unknown[]; done: boolean }> {
  if (res.status !== 200) throw new Error(`stream: status ${res.status}: ${await res.text()}`);
  if (!res.headers.get("content-type")?.startsWith("text/event-stream")) {
    throw new Error("not an event stream");
  }
  const events: unknown[] = [];
  let done = false, buf = "";
  const dec = new TextDecoder();
  for await (const bytes of res.body!) {
    buf += dec.decode(bytes, { stream: true });
    let i;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const frame = buf.slice(0, i);
      buf = buf.slice(i + 2);
      for (const line of frame.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") done = true;
        else if (done) throw new Error("data after [DONE]");
        else events.push(JSON.parse(data));
      }
    }
  }
  return { events, done };
}
