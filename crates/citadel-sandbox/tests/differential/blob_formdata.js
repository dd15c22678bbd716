// Blobs and form data, as an upload handler sees them.
const blob = new Blob(["hello ", new TextEncoder().encode("world")], { type: "Text/Plain" });
const part = blob.slice(-5);
const form = new FormData();
form.append("name", "Ann");
form.append("tags", "a");
form.append("tags", "b");
form.set("name", "Bob");
form.append("file", new Blob(["data"]), "a.txt");
const file = form.get("file");
return { size: blob.size, type: blob.type, text: await blob.text(), part: await part.text(), name: form.get("name"), tags: form.getAll("tags"), keys: [...form.keys()], file: [file.name, file.size, await file.text()], has: form.has("nope") };
