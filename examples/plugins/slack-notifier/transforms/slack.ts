// Shapes an event into a chat message.
export function transform(event: { type: string; data: unknown }) {
  return { text: `${event.type}: ${JSON.stringify(event.data)}` };
}
