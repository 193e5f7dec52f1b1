// The API reference at /docs: renders /openapi.json (generated from the router) offline.
"use strict";

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

function schemaName(schema) {
  return schema && schema.$ref ? schema.$ref.split("/").pop() : null;
}

function schemaBlock(doc, schema) {
  const name = schemaName(schema);
  const resolved = name ? doc.components.schemas[name] : schema;
  return el("div", {}, name ? el("div", {}, el("code", {}, name)) : null,
    el("pre", { class: "schema" }, JSON.stringify(resolved, null, 2)));
}

function operation(doc, path, method, op) {
  const body = el("div", { class: "body" });
  if (op.parameters && op.parameters.length) {
    body.append(el("h2", {}, "Parameters"), el("table", {},
      el("thead", {}, el("tr", {}, el("th", {}, "name"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "description"))),
      el("tbody", {}, op.parameters.map((p) => el("tr", {},
        el("td", {}, el("code", {}, p.name)), el("td", {}, p.in),
        el("td", {}, [].concat(p.schema.type).join(" | ")), el("td", {}, p.description || ""))))));
  }
  const req = op.requestBody && op.requestBody.content["application/json"];
  if (req) body.append(el("h2", {}, "Request body (JSON)"), schemaBlock(doc, req.schema));
  for (const [status, resp] of Object.entries(op.responses || {})) {
    body.append(el("h2", {}, `Response ${status}: ${resp.description}`));
    for (const [type, media] of Object.entries(resp.content || {})) {
      body.append(el("div", { class: "muted" }, type));
      if (media.schema && (media.schema.$ref || media.schema.properties)) body.append(schemaBlock(doc, media.schema));
    }
  }
  const auth = op.security && op.security.length ? "token or cookie" : "no auth";
  return el("details", { class: "op", id: op.operationId },
    el("summary", {}, el("span", { class: `method ${method}` }, method), el("code", {}, path),
      el("span", { class: "muted" }, op.summary), el("span", { class: "spacer" }), el("span", { class: "muted" }, auth)),
    body);
}

async function main() {
  const root = document.getElementById("docs");
  try {
    const doc = await (await fetch("/openapi.json")).json();
    const byTag = new Map(doc.tags.map((t) => [t.name, []]));
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const tag = (op.tags && op.tags[0]) || "other";
        if (!byTag.has(tag)) byTag.set(tag, []);
        byTag.get(tag).push(operation(doc, path, method, op));
      }
    }
    const count = [...byTag.values()].reduce((n, ops) => n + ops.length, 0);
    root.replaceChildren(
      el("h1", {}, `${doc.info.title} API `, el("span", { class: "muted" }, doc.info.version)),
      el("p", {}, doc.info.description),
      el("p", { class: "muted" }, `${count} operations, generated from the server's routes: `, el("a", { href: "/openapi.json" }, "openapi.json")),
      ...doc.tags.map((t) => el("section", { class: "panel", id: `tag-${t.name.split(" ")[0]}` },
        el("h2", {}, t.name, " ", el("span", { class: "muted" }, t.description)),
        byTag.get(t.name) || [])));
  } catch (e) {
    root.replaceChildren(el("p", { class: "flash error" }, `Could not load /openapi.json: ${e.message}`));
  }
}

main();
