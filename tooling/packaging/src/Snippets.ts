/** The ```ts code blocks of a Markdown document, in order: each is a complete module a reader can paste. */
export const tsSnippets = (markdown: string): ReadonlyArray<string> => [...markdown.matchAll(/^```ts\n([\s\S]*?)^```$/gm)].map((m) => m[1]!)
