// The chat rendering: the word rendering's text (render.ts) put through the model's own chat template,
// so an instruction-tuned model reads the task as a user turn and answers as the assistant. A model
// only follows a prompt in the format it was tuned on (issue 23: SmolLM2-135M-Instruct got 7/100 of
// lookup d1 on the plain word prompt, 25/100 on the same prompt through its template).
//
//   agent prompt    template([{role: user, content: <word prompt without <bos>>}], add_generation_prompt)
//                   e.g. ChatML: "<|im_start|>user\nTable: apple=3, key=7.\nAnswer:<|im_end|>\n<|im_start|>assistant\n"
//   skyline prompt  the same over the word skyline's text
//   target          "<answer><eos>" (the assistant's turn: no leading space; <eos> is the model's
//                   eos id, which is the end-of-turn token of the instruct models: <|im_end|> for
//                   SmolLM2 and Qwen2.5-Instruct)
//   messages        as the word rendering: "Message:<content>\n" lines inside the user turn; a sender's
//                   user turn ends with "Message:" and its assistant turn is the message
//
// The template is tokenizer_config.json's chat_template (a string, or the list of named templates of
// which "default" is taken), rendered with @huggingface/jinja as transformers' apply_chat_template
// does: the config's special tokens (bos_token, eos_token, ...) as their text, add_generation_prompt
// (the library defines raise_exception). The text holds the template's specials as text; the
// tokenizer encodes them as the special ids (added tokens), and the template, not the rendering,
// decides whether a <bos> opens it, so the ids equal transformers' apply_chat_template(tokenize=True)
// (python/tests/test_chat_render.py).
//
// Answer extraction (the whole rule; accuracy compares its result with episode.answer exactly):
//   1. the decoded text is cut at the first end of turn: the <eos> marker, the template's end-of-turn
//      token (what follows an assistant message in the template, e.g. "<|im_end|>", "<|eot_id|>"),
//      the eos token's text, then at the first "<" (any other special) or line end;
//   2. the candidates are the maximal runs of ASCII digits (with a "-" right before it, unless that
//      "-" follows a letter or digit: arith's negative results) and the ASCII letters that stand
//      alone (not in a word); the answer is the last candidate, "" when there is none.
//   So "7", " 7.", "7<|im_end|>" and "The answer is 7." give "7"; "-12" gives "-12"; "The answer is:
//   o." and "The 3rd letter is x" give "o" and "x"; "The answer is \"egg\"." gives "". An instruct
//   model leads in with a few words (SmolLM2-135M-Instruct: "The answer is: o."), so the answer
//   region, decoded greedily, holds CHAT_ANSWER_SLACK tokens more than the answer (maxAnswerChars);
//   the target stays "<answer><eos>".
//
// text-trained: its message slots follow the head (the template's text up to the user's content)
// where the word rendering has <bos> (text-channel.ts messageLead).
//
// Pure TypeScript: no DOM, no Node API.
import { Template } from '@huggingface/jinja';
import type { Episode, PromptOptions, Task } from './tasks';
import { WORD_RENDERING, type MessageFormat, type TaskRendering } from './render';
import { BOS, EOS } from '../tokenizers/markers';
import type { TextTokenizer } from '../tokenizers/types';

export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

/** A chat rendering: a TaskRendering named 'chat' whose text comes from one model's template. */
export type ChatTaskRendering = TaskRendering & {
  readonly name: 'chat';
  /** the template's end-of-turn token text, or null when it could not be told */
  readonly endOfTurn: string | null;
  /** the template applied to one user turn, with the generation prompt */
  chat(content: string): string;
  /**
   * The text every prompt starts with, up to the user turn's content (a text receiver's messages come
   * right after it: a run bundle's messagesAt is its token count, where the word rendering has <bos>).
   */
  readonly head: string;
};

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant';
  content: string;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The content of a special-token setting ("<s>" or {content: "<s>", ...}), as transformers reads it. */
function tokenText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return null;
}

/** tokenizer_config.json's chat template: the string, or the "default" one of a list of named templates; null when none. */
export function chatTemplateOf(config: Record<string, unknown> | null | undefined): string | null {
  const t = config?.chat_template;
  if (typeof t === 'string' && t.trim()) return t;
  if (Array.isArray(t)) {
    const d = t.find((x) => isObject(x) && x.name === 'default');
    if (isObject(d) && typeof d.template === 'string') return d.template;
  }
  return null;
}

/** The tokenizer_config.json an engine tokenizer was made with (HfTokenizer keeps it as `config`); null for the char tokenizer. */
export function tokenizerConfigOf(tk: TextTokenizer): Record<string, unknown> | null {
  if (tk.kind !== 'hf') return null;
  const c = (tk as TextTokenizer & { config?: unknown }).config;
  return isObject(c) ? c : null;
}

/** Whether the model can take the chat rendering: its tokenizer_config.json has a chat template. */
export function hasChatTemplate(tk: TextTokenizer | null): boolean {
  return tk !== null && chatTemplateOf(tokenizerConfigOf(tk)) !== null;
}

/** The renderings a model can take (what the page's select offers): chat only where the model has a template. */
export function renderingsFor(tk: TextTokenizer | null): ('char' | 'word' | 'chat')[] {
  return hasChatTemplate(tk) ? ['char', 'word', 'chat'] : ['char', 'word'];
}

/** A compiled chat template with the special tokens transformers passes to it. */
export class ChatTemplate {
  private readonly template: Template;
  private readonly specials: Record<string, string> = {};
  /** what ends an assistant turn in this template ("<|im_end|>"), or null */
  readonly endOfTurn: string | null;

  constructor(config: Record<string, unknown> | null | undefined) {
    const source = chatTemplateOf(config);
    if (source === null) {
      throw new Error(`the chat rendering needs the model's chat template, and its ${TOKENIZER_CONFIG_FILE} has no "chat_template" (use the word rendering, or a model with a template, e.g. an -Instruct one)`);
    }
    try {
      this.template = new Template(source);
    } catch (e) {
      throw new Error(`${TOKENIZER_CONFIG_FILE}: its chat_template cannot be parsed: ${(e as Error).message}`);
    }
    for (const [k, v] of Object.entries(config ?? {})) {
      const text = k.endsWith('_token') ? tokenText(v) : null;
      if (text !== null) this.specials[k] = text;
    }
    this.endOfTurn = this.findEndOfTurn();
  }

  /** The template over these messages (transformers' apply_chat_template(..., tokenize=False)). */
  render(messages: readonly ChatMessage[], addGenerationPrompt: boolean): string {
    try {
      return this.template.render({
        ...this.specials,
        messages: messages.map((m) => ({ ...m })),
        add_generation_prompt: addGenerationPrompt,
        // (raise_exception is the library's own)
      });
    } catch (e) {
      throw new Error(`${TOKENIZER_CONFIG_FILE}: its chat_template failed to render: ${(e as Error).message}`);
    }
  }

  /** The text right after an assistant message up to the first white space: its end-of-turn token. */
  private findEndOfTurn(): string | null {
    const mark = 'ZqxAnswerMarkZqx';
    let text: string;
    try {
      text = this.render([{ role: 'user', content: 'Q' }, { role: 'assistant', content: mark }], false);
    } catch {
      return null;
    }
    const at = text.lastIndexOf(mark);
    if (at < 0) return null;
    const end = /^\S+/.exec(text.slice(at + mark.length));
    return end ? end[0] : null;
  }
}

/** Step 1 of the extraction rule: the text before the end of turn, another special, or a line end. */
export function cutAtEndOfTurn(decoded: string, stops: readonly string[]): string {
  let end = decoded.length;
  for (const stop of [EOS, ...stops, '<', '\n']) {
    if (!stop) continue;
    const i = decoded.indexOf(stop);
    if (i >= 0 && i < end) end = i;
  }
  return decoded.slice(0, end);
}

/** Answer candidates: a digit run (a "-" before it that follows no letter or digit), or a letter standing alone. */
const CANDIDATE = /(?:(?<![A-Za-z0-9])-)?[0-9]+|(?<![A-Za-z])[A-Za-z](?![A-Za-z])/g;

/** Decoding room for an instruct model's lead-in ("The answer is: ") beyond the answer, in tokens. */
export const CHAT_ANSWER_SLACK = 12;

/** The chat rendering's answer rule (module comment): the last digit run or lone letter before the end of turn. */
export function chatExtract(decoded: string, stops: readonly string[] = []): string {
  const all = cutAtEndOfTurn(decoded, stops).match(CANDIDATE);
  return all ? all[all.length - 1] : '';
}

function withoutBos(text: string): string {
  if (!text.startsWith(BOS)) throw new Error(`chat rendering: the word text must start with ${BOS}, got ${JSON.stringify(text.slice(0, 20))}`);
  return text.slice(BOS.length);
}

/** The chat rendering over one model's tokenizer_config.json (throws, naming the file, when it has no chat template). */
export function chatRenderingFromConfig(config: Record<string, unknown> | null | undefined): ChatTaskRendering {
  const t = new ChatTemplate(config);
  const stops = [t.endOfTurn, tokenText(config?.eos_token)].filter((s): s is string => !!s);
  const chat = (content: string) => t.render([{ role: 'user', content }], true);
  const mark = 'ZqxContentMarkZqx';
  const marked = chat(mark);
  if (marked.indexOf(mark) < 0) throw new Error(`${TOKENIZER_CONFIG_FILE}: its chat_template does not write the user's message`);
  const head = marked.slice(0, marked.indexOf(mark));
  const message: MessageFormat = WORD_RENDERING.message;
  const extractAnswer = (decoded: string) => chatExtract(decoded, stops);
  return Object.freeze({
    name: 'chat' as const,
    endOfTurn: t.endOfTurn,
    chat,
    head,
    part: (ep: Episode, i: number) => WORD_RENDERING.part(ep, i),
    prompt: (ep: Episode, part: number | 'none', opts: PromptOptions = {}) => chat(withoutBos(WORD_RENDERING.prompt(ep, part, opts))),
    target: (ep: Episode) => `${ep.answer}${EOS}`,
    skyline: (ep: Episode) => chat(withoutBos(WORD_RENDERING.skyline(ep))),
    message,
    extractAnswer,
    isCorrect: (ep: Episode, decoded: string) => extractAnswer(decoded) === ep.answer,
    maxAnswerChars: (task: Task) => task.maxAnswerLength + CHAT_ANSWER_SLACK,
  });
}

/** The chat rendering of a model's tokenizer (throws for a tokenizer without a chat template). */
export function chatRendering(tk: TextTokenizer): ChatTaskRendering {
  if (tk.kind !== 'hf') throw new Error(`the chat rendering needs a Hugging Face tokenizer with a chat template in ${TOKENIZER_CONFIG_FILE}; this model has the character tokenizer`);
  return chatRenderingFromConfig(tokenizerConfigOf(tk));
}
