import * as vscode from 'vscode';

/** Invokes a language model tool the way an agent does (no chat request behind it) and returns its text. */
export async function invokeToolText(name: string, input: object): Promise<string> {
  const result = await vscode.lm.invokeTool(name, { input, toolInvocationToken: undefined });
  return result.content
    .filter((part): part is vscode.LanguageModelTextPart => part instanceof vscode.LanguageModelTextPart)
    .map((part) => part.value)
    .join('');
}
