// Welcome email: on every new user, one message through the mail API.

async function sendWelcome(ctx, email, firstName) {
  const key = await ctx.secrets.get("MAIL_API_KEY");
  const res = await ctx.http.fetch(ctx.config.mail_api_url, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({
      from: ctx.config.from,
      to: email,
      subject: ctx.config.subject,
      text: `Hello ${firstName || "there"}, welcome!`,
    }),
  });
  return { status: res.status };
}

hook("auth.user.created", async (ctx, event) => {
  const user = (event.data && event.data.user) || {};
  if (!user.email) {
    ctx.log.warn("user without an email, nothing sent");
    return { sent: false };
  }
  const result = await sendWelcome(ctx, user.email, user.first_name);
  ctx.log.info(`welcome email to ${user.email}: ${result.status}`);
  return { sent: result.status < 300 };
});

route("GET", "/ping", async () => ({ status: 200, body: { status: "ok", plugin: "welcome-email" } }));

route("POST", "/send-test", async (ctx, req) => {
  const email = req.body && req.body.email;
  if (typeof email !== "string") {
    return { status: 400, body: { error: "email is required" } };
  }
  return { status: 200, body: await sendWelcome(ctx, email, "tester") };
});
