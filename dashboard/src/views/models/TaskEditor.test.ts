import { mount } from "@vue/test-utils";
import type { Task } from "@/api/types";
import { fakeServer, settle } from "@/test/fakeServer";
import TaskEditor from "./TaskEditor.vue";

const task: Task = {
  id: 7, app_id: 3, name: "movies", model_type: "logistic", hyper: { learning_rate: 0.1 }, feature_schema: {},
  cohort_size: 20, min_participants: 5, selection_seconds: 60, upload_seconds: 600, local_epochs: 1,
  server_learning_rate: 1, current_version: 2, num_items: 10, created_at: "2026-01-01T00:00:00",
};

async function fill(w: ReturnType<typeof mount>, id: string, value: string): Promise<void> {
  await w.get(`#${id}`).setValue(value);
}

describe("TaskEditor", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("shows a message under each wrong field and sends nothing", async () => {
    const server = fakeServer({});
    vi.stubGlobal("fetch", server.fetch);
    const w = mount(TaskEditor, { props: { appId: 3, task } });
    await fill(w, "tf-cohort_size", "0");
    await fill(w, "tf-local_epochs", "99");
    await w.get("form").trigger("submit");
    expect(w.get("#tf-cohort_size-err").text()).toBe("Cohort size must be at least 1.");
    expect(w.get("#tf-cohort_size").attributes("aria-invalid")).toBe("true");
    expect(w.get("#tf-cohort_size").attributes("aria-describedby")).toContain("tf-cohort_size-err");
    expect(w.get("#tf-local_epochs-err").text()).toBe("Local epochs must be at most 50.");
    expect(w.text()).toContain("Privacy settings: this feature is off");
    expect(server.calls).toHaveLength(0);
  });

  it("saves only what changed and reports success", async () => {
    const server = fakeServer({ "PATCH /api/apps/3/tasks/7": (body) => ({ body: { ...task, ...(body as object) } }) });
    vi.stubGlobal("fetch", server.fetch);
    const w = mount(TaskEditor, { props: { appId: 3, task } });
    await fill(w, "tf-cohort_size", "40");
    await w.get("form").trigger("submit");
    await settle();
    expect(server.calls[0]!.body).toEqual({ cohort_size: 40 });
    expect(w.text()).toContain("Saved. The next round uses the new parameters.");
    expect(w.emitted("saved")![0]![0]).toMatchObject({ cohort_size: 40 });
  });

  it("shows the server's validation message when the server refuses", async () => {
    vi.stubGlobal("fetch", fakeServer({
      "PATCH /api/apps/3/tasks/7": { status: 422, body: { code: "bad_hyper", message: "hyper.learning_rate: Input should be greater than 0" } },
    }).fetch);
    const w = mount(TaskEditor, { props: { appId: 3, task } });
    await fill(w, "tf-hyper", '{"learning_rate": -1}');
    await w.get("form").trigger("submit");
    await settle();
    expect(w.get('[data-testid="server-error"]').text()).toBe(
      "The server refused the change: hyper.learning_rate: Input should be greater than 0",
    );
  });
});
