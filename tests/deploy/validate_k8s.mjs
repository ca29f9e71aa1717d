// Validates Kubernetes objects (a JSON array on stdin) against the
// Kubernetes API's OpenAPI schemas as packaged by kubernetes-models (each
// kind's generated validator: types, required fields, enums, formats).
// Prints "valid KIND NAME" or "invalid KIND NAME: why" per object; exits 1
// if any is invalid or of a kind it has no schema for.
import fs from "fs";

const docs = JSON.parse(fs.readFileSync(0, "utf8"));
let bad = 0;
for (const d of docs) {
  const name = `${d.kind} ${d.metadata?.name}`;
  const [group, version] = d.apiVersion.includes("/") ? d.apiVersion.split("/") : ["", d.apiVersion];
  let Model;
  try {
    Model = (await import(`kubernetes-models/${group ? group + "/" : ""}${version}`))[d.kind];
  } catch (e) {
    Model = undefined;
  }
  if (!Model) {
    bad++;
    console.log(`invalid ${name}: no schema for ${d.apiVersion} ${d.kind}`);
    continue;
  }
  try {
    new Model(d).validate();
    console.log(`valid ${name}`);
  } catch (e) {
    bad++;
    console.log(`invalid ${name}: ${e.message}`);
  }
}
process.exit(bad ? 1 : 0);
