// The message every public function of @scorch/score gives for an options object with a name it
// does not know (from @scorch/tensor's checkOptions), as a RegExp over the whole message, so a
// test states the function, the unknown name, the suggestion (if any) and the valid names.

const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

export function unknownOption(where: string, key: string, suggestion: string | null, valid: readonly string[]): RegExp {
  const hint = suggestion === null ? '' : ` (did you mean '${suggestion}'?)`;
  return new RegExp(`^${escape(`${where}: unknown option '${key}'${hint}; valid options: ${valid.join(', ')}`)}$`);
}
