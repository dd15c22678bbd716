// Reshapes a webhook payload; the return value is what gets forwarded.
// Grant: none.
type Incoming = { event: string; payload: { id: string; customer?: { email?: string } } };

const body = input as Incoming;
return {
  type: body.event,
  id: body.payload.id,
  // Forward only what the receiver needs.
  email_domain: body.payload.customer?.email?.split("@")[1] ?? null,
};
