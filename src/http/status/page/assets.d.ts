// The status page's files are imported as text (`with { type: "text" }`,
// src/http/status/page.ts) and inlined into the binary: to TypeScript they
// are strings, not modules.
declare module "*.page.js" {
  const text: string;
  export default text;
}
declare module "*.css" {
  const text: string;
  export default text;
}
