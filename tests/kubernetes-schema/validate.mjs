// Validates Kubernetes manifests against the Kubernetes OpenAPI schema with kubernetes-models, whose validators
// are compiled from that schema and ship in the package: nothing is fetched and no cluster is needed.
// Usage: node validate.mjs FILE.yaml...   prints one line per object; exits 1 when any object is invalid.
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

let failed = 0;
for (const file of process.argv.slice(2)) {
  for (const document of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (document.errors.length > 0) {
      console.log(`${file}: not YAML: ${document.errors.map(e => e.message).join("; ")}`);
      failed++;
      continue;
    }

    const object = document.toJS();
    if (object === null) {
      continue;
    }

    const name = `${file}: ${object.kind}/${object.metadata?.name}`;
    const problem = await check(object);
    console.log(problem ? `${name}: invalid: ${problem}` : `${name}: valid`);
    failed += problem ? 1 : 0;
  }
}

process.exit(failed > 0 ? 1 : 0);

async function check(object) {
  if (typeof object.apiVersion !== "string" || typeof object.kind !== "string") {
    return "apiVersion and kind must be strings";
  }

  // The core group is "v1", the others "group/version": the package's folders follow the same layout.
  let model;
  try {
    model = (await import(`kubernetes-models/${object.apiVersion}/${object.kind}`))[object.kind];
  } catch {
    return `no schema for ${object.apiVersion} ${object.kind}`;
  }

  try {
    new model(object).validate();
    return null;
  } catch (e) {
    return e.message;
  }
}
