// How a problem becomes a prompt and a solution becomes a completion: one definition for SFT, sampling, pairs
// and evaluation, so that every stage sees the same text.
//
// plain: the question, a newline, then the solution's steps one per line and "#### answer" (GSM8K's format).
// chat:  the model's chat template with the question as the user's message; the solution is the reply.

export type PromptTemplate = "plain" | "chat";

/** Every prompt template, for the knob readers. */
export const PROMPT_TEMPLATES: readonly PromptTemplate[] = ["plain", "chat"];

/** What a chat template needs from a tokenizer (TextTokenizer in src/model/tokenizer.ts has it). */
export interface ChatFormatter {
  applyChatTemplate(messages: { role: string; content: string }[], opts?: { addGenerationPrompt?: boolean }): string;
}

export function promptText(question: string, template: PromptTemplate = "plain", chat?: ChatFormatter): string {
  if (template === "plain") return `${question.trim()}\n`;
  if (!chat) throw new Error("the chat template needs a tokenizer with a chat template");
  return chat.applyChatTemplate([{ role: "user", content: question.trim() }], { addGenerationPrompt: true });
}

/** The completion text of a reference solution (trailing whitespace dropped; the tokenizer adds EOS). */
export function completionText(solution: string): string {
  return solution.replace(/\s+$/, "");
}
