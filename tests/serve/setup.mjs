// ctest fixture of the serve tests: `npm ci` of the OpenAI client into WORK_DIR/node.
//   node setup.mjs WORK_DIR
import { openaiClient } from "./common.mjs";
const OpenAI = openaiClient(process.argv[2]);
if (typeof OpenAI !== "function") throw new Error("the openai package did not load");
console.log("openai client installed in " + process.argv[2] + "/node");
