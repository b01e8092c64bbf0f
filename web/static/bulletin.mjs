// Bulletin as an ES module: `import { Bulletin } from "https://HOST/static/bulletin.mjs"`.
// bulletin.js is written to run as a classic script and as a module alike.
import "./bulletin.js";

export const Bulletin = globalThis.Bulletin;
export default Bulletin;
