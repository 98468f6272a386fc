package peaka

import (
	"bytes"
	"context"
	"encoding/json"
)

// Route templates of the organization calls.
const (
	EndpointOrganizations = "/organizations"
	EndpointWorkspaces    = "/organizations/{organizationId}/workspaces"
	EndpointProjects      = "/organizations/{organizationId}/workspaces/{workspaceId}/projects"
)

// Organization is the top of the tree a Partner API key reaches.
type Organization struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Workspace is a part of an organization.
type Workspace struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	OrganizationID string `json:"organizationId"`
}

// Project is a Peaka project.
type Project struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	WorkspaceID string `json:"workspaceId"`
}

// Organizations lists the organizations the key reaches (Partner keys only).
func (c *Client) Organizations(ctx context.Context) ([]Organization, error) {
	var out oneOrMany[Organization]
	err := c.get(ctx, EndpointOrganizations, nil, &out)
	return out, err
}

// Workspaces lists an organization's workspaces.
func (c *Client) Workspaces(ctx context.Context, orgID string) ([]Workspace, error) {
	var out oneOrMany[Workspace]
	err := c.get(ctx, EndpointWorkspaces, nil, &out, orgID)
	return out, err
}

// Projects lists a workspace's projects.
func (c *Client) Projects(ctx context.Context, orgID, workspaceID string) ([]Project, error) {
	var out oneOrMany[Project]
	err := c.get(ctx, EndpointProjects, nil, &out, orgID, workspaceID)
	return out, err
}

// oneOrMany decodes an array, or a single object as a one-element array:
// the OpenAPI description declares a single Organization and Workspace
// where its examples (and the service) answer arrays.
type oneOrMany[T any] []T

func (o *oneOrMany[T]) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '{' {
		var one T
		if err := json.Unmarshal(b, &one); err != nil {
			return err
		}
		*o = []T{one}
		return nil
	}
	var many []T
	if err := json.Unmarshal(b, &many); err != nil {
		return err
	}
	*o = many
	return nil
}
