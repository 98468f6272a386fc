package peaka_test

import (
	"context"
	"testing"

	"github.com/peakacom/peaka_exporter/peaka"
	"github.com/peakacom/peaka_exporter/peaka/peakatest"
)

func TestOrganizationTree(t *testing.T) {
	sim, c := setup(t)
	sim.AddOrganization("org-1", "One")
	sim.AddWorkspace("org-1", "ws-a", "A")
	sim.AddWorkspace("org-1", "ws-b", "B")
	sim.AddProject(peakatest.Project{ID: "pa", Name: "PA", OrganizationID: "org-1", WorkspaceID: "ws-a"})
	sim.AddProject(peakatest.Project{ID: "pb", Name: "PB", OrganizationID: "org-1", WorkspaceID: "ws-b"})
	ctx := context.Background()

	orgs, err := c.Organizations(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, o := range orgs {
		wss, err := c.Workspaces(ctx, o.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, ws := range wss {
			ps, err := c.Projects(ctx, o.ID, ws.ID)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range ps {
				found[p.ID] = true
			}
		}
	}
	if !found["pa"] || !found["pb"] {
		t.Errorf("projects found: %v", found)
	}

	sim.AddProjectKey("project-key", "pa", "u")
	if _, err := c.WithKey("project-key").Organizations(ctx); peaka.ReasonOf(err) != peaka.ReasonForbidden {
		t.Errorf("organizations with a project key: %v, want forbidden", err)
	}
}
